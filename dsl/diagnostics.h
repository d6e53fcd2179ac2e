// Diagnostics: one format for every user-facing error about a model file.
//
//   model.nn:3:17: error: unknown op `rleu`; did you mean `relu`?
//       h = rleu(x)
//           ^~~~
//   model.nn:1:12: note: `x` declared here
//
// Stages report into a DiagnosticEngine and keep going where they can; the driver renders them all.
#pragma once

#include <string>
#include <vector>

#include "dsl/source.h"

namespace nnc::dsl {

enum class Severity { Error, Warning, Note };

// Every kind of diagnostic, from the registry dsl/diagnostic_kinds.def.
enum class DiagKind {
#define DIAG(Kind, severity, summary) Kind,
#include "dsl/diagnostic_kinds.def"
#undef DIAG
  Note,  // the kind of a note attached to a diagnostic
};

struct DiagKindInfo {
  const char* name;
  Severity severity;
  const char* summary;
};
const DiagKindInfo& diagKindInfo(DiagKind kind);
constexpr int kDiagKindCount = static_cast<int>(DiagKind::Note);

struct Diagnostic {
  DiagKind kind = DiagKind::Note;
  Severity severity = Severity::Error;
  Span span;
  std::string message;
  std::vector<Diagnostic> notes;  // Severity::Note, each with its own span
};

class DiagnosticEngine {
 public:
  // Errors past `error_limit` are counted, not kept (0: no limit): a binary file fed as a model made 4,802.
  explicit DiagnosticEngine(const SourceFile& source, size_t error_limit = 0)
      : source_(&source), error_limit_(error_limit) {}

  // Adds an error or warning (the registry says which) and returns it so callers can attach notes.
  Diagnostic& report(DiagKind kind, Span span, std::string message);
  static void note(Diagnostic& diag, Span span, std::string message);

  bool hasErrors() const;
  const std::vector<Diagnostic>& diagnostics() const { return diags_; }
  const SourceFile& source() const { return *source_; }

  // Renders every diagnostic kept, in report order: header, source line, caret line, then its notes; then, when
  // errors were dropped at the limit, how many there were.
  std::string render() const;

 private:
  const SourceFile* source_;
  size_t error_limit_;
  size_t errors_ = 0;  // reported, kept or not
  std::vector<Diagnostic> diags_;
  Diagnostic dropped_;  // what report() hands out past the limit
};

// Renders one diagnostic (and its notes) against `source`.
std::string renderDiagnostic(const SourceFile& source, const Diagnostic& diag);

}  // namespace nnc::dsl
