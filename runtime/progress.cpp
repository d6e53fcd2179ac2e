// Progress bar; see progress.h.
#include "runtime/progress.h"

#include <unistd.h>

#include <cstdio>

namespace nnc::rt {

namespace {
constexpr auto kTerminalRedraw = std::chrono::milliseconds(100);
constexpr auto kPlainLineEvery = std::chrono::seconds(10);
}  // namespace

Progress::Progress(int64_t epoch, int64_t epochs, int64_t steps, bool shown)
    : epoch_(epoch), epochs_(epochs), steps_(steps), terminal_(isatty(fileno(stderr))), shown_(shown),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

std::string Progress::line(int64_t step, int64_t images, double mean_loss) const {
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = seconds > 0 ? static_cast<double>(images) / seconds : 0;
  double eta = step > 0 ? seconds * static_cast<double>(steps_ - step) / static_cast<double>(step) : 0;
  char text[160];
  std::string bar;
  if (terminal_) {
    constexpr int kWidth = 24;
    int filled = steps_ > 0 ? static_cast<int>(kWidth * step / steps_) : kWidth;
    bar = "[" + std::string(filled, '=') + (filled < kWidth ? ">" : "") +
          std::string(kWidth - filled - (filled < kWidth ? 1 : 0), ' ') + "] ";
  }
  std::snprintf(text, sizeof text, "epoch %lld/%lld %s%lld/%lld  loss %.4f  %.0f img/s  ETA %.0fs",
                static_cast<long long>(epoch_), static_cast<long long>(epochs_), bar.c_str(),
                static_cast<long long>(step), static_cast<long long>(steps_), mean_loss, rate, eta);
  return text;
}

void Progress::update(int64_t step, int64_t images, double mean_loss) {
  if (!shown_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < (terminal_ ? std::chrono::duration_cast<std::chrono::milliseconds>(kTerminalRedraw)
                                    : std::chrono::duration_cast<std::chrono::milliseconds>(kPlainLineEvery)) &&
      step != steps_)
    return;
  last_draw_ = now;
  if (terminal_) std::fprintf(stderr, "\r\033[K%s", line(step, images, mean_loss).c_str());
  else std::fprintf(stderr, "%s\n", line(step, images, mean_loss).c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  if (terminal_ && shown_) std::fprintf(stderr, "\n");
}

}  // namespace nnc::rt
