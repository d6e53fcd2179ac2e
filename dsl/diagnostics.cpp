// Diagnostics: collects errors, warnings and notes, and renders them in the one caret format
// (header, source line, `^~~~` under the span).
#include "dsl/diagnostics.h"

#include <algorithm>

#include <fmt/format.h>

namespace nnc::dsl {

const DiagKindInfo& diagKindInfo(DiagKind kind) {
  static const DiagKindInfo kInfo[] = {
#define DIAG(Kind, severity, summary) {#Kind, Severity::severity, summary},
#include "dsl/diagnostic_kinds.def"
#undef DIAG
      {"Note", Severity::Note, "a note attached to a diagnostic"},
  };
  return kInfo[static_cast<int>(kind)];
}

Diagnostic& DiagnosticEngine::report(DiagKind kind, Span span, std::string message) {
  Diagnostic diag{kind, diagKindInfo(kind).severity, span, std::move(message), {}};
  if (diag.severity == Severity::Error && error_limit_ && errors_++ >= error_limit_) {
    dropped_ = std::move(diag);
    return dropped_;
  }
  diags_.push_back(std::move(diag));
  return diags_.back();
}

void DiagnosticEngine::note(Diagnostic& diag, Span span, std::string message) {
  diag.notes.push_back(Diagnostic{DiagKind::Note, Severity::Note, span, std::move(message), {}});
}

bool DiagnosticEngine::hasErrors() const {
  return errors_ > 0 ||
         std::any_of(diags_.begin(), diags_.end(), [](const Diagnostic& d) { return d.severity == Severity::Error; });
}

std::string DiagnosticEngine::render() const {
  std::string out;
  for (const Diagnostic& diag : diags_) out += renderDiagnostic(*source_, diag);
  if (error_limit_ && errors_ > error_limit_)
    out += fmt::format("{}: error: too many errors ({} in all); stopped showing them after {} "
                       "(--error-limit=N shows more, 0 all)\n",
                       source_->path(), errors_, error_limit_);
  return out;
}

namespace {

const char* severityName(Severity severity) {
  switch (severity) {
    case Severity::Error: return "error";
    case Severity::Warning: return "warning";
    case Severity::Note: return "note";
  }
  return "error";
}

// The caret line under `line`: spaces (tabs where the source has tabs, so it aligns) up to the span
// start, one `^`, then `~` for the rest of the span that lies on this line.
std::string caretLine(std::string_view line, uint32_t col, uint32_t length) {
  std::string out;
  uint32_t start = col - 1;
  for (uint32_t i = 0; i < start; ++i) out += (i < line.size() && line[i] == '\t') ? '\t' : ' ';
  out += '^';
  uint32_t line_end = static_cast<uint32_t>(line.size());
  uint32_t span_end = std::min(start + length, line_end);
  for (uint32_t i = start + 1; i < span_end; ++i) out += '~';
  return out;
}

// One header + source line + caret line, without notes.
std::string renderOne(const SourceFile& source, const Diagnostic& diag) {
  LineCol pos = source.lineCol(diag.span.begin);
  std::string_view line = source.lineText(pos.line);
  uint32_t length = diag.span.end > diag.span.begin ? diag.span.end - diag.span.begin : 1;
  return fmt::format("{}:{}:{}: {}: {}\n    {}\n    {}\n", source.path(), pos.line, pos.col,
                     severityName(diag.severity), diag.message, line, caretLine(line, pos.col, length));
}

}  // namespace

std::string renderDiagnostic(const SourceFile& source, const Diagnostic& diag) {
  std::string out = renderOne(source, diag);
  for (const Diagnostic& note : diag.notes) out += renderOne(source, note);
  return out;
}

}  // namespace nnc::dsl
