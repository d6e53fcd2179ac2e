// Training progress: a one-line bar redrawn in place on a terminal, plain periodic lines otherwise (logs, CI).
//
//   epoch 1/5 [=========>          ] 469/938  loss 0.5123  31250 img/s  ETA 3s
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace nnc::rt {

class Progress {
 public:
  // `shown` false: a silent bar (the other ranks of a data-parallel run; rank 0 shows it).
  Progress(int64_t epoch, int64_t epochs, int64_t steps, bool shown = true);
  // Reports that `step` steps of this epoch are done, `images` examples seen, with the running mean loss.
  void update(int64_t step, int64_t images, double mean_loss);
  // Ends the bar's line (on a terminal).
  void finish();

 private:
  int64_t epoch_, epochs_, steps_;
  bool terminal_, shown_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::string line(int64_t step, int64_t images, double mean_loss) const;
};

}  // namespace nnc::rt
