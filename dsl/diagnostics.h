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
  explicit DiagnosticEngine(const SourceFile& source) : source_(&source) {}

  // Adds an error or warning (the registry says which) and returns it so callers can attach notes.
  Diagnostic& report(DiagKind kind, Span span, std::string message);
  static void note(Diagnostic& diag, Span span, std::string message);

  bool hasErrors() const;
  const std::vector<Diagnostic>& diagnostics() const { return diags_; }
  const SourceFile& source() const { return *source_; }

  // Renders every diagnostic in report order: header, source line, caret line, then its notes.
  std::string render() const;

 private:
  const SourceFile* source_;
  std::vector<Diagnostic> diags_;
};

// Renders one diagnostic (and its notes) against `source`.
std::string renderDiagnostic(const SourceFile& source, const Diagnostic& diag);

}  // namespace nnc::dsl
