// Lexer: source text -> tokens (see lexer.h). A small hand-written scanner in the style of clox:
// a cursor over the text, one function per token family, errors reported as diagnostics + Error tokens.
#include "dsl/lexer.h"

#include <fmt/format.h>

namespace nnc::dsl {

const char* tokenKindName(TokenKind kind) {
  switch (kind) {
    case TokenKind::Identifier: return "IDENT";
    case TokenKind::Number: return "NUMBER";
    case TokenKind::String: return "STRING";
    case TokenKind::Model: return "MODEL";
    case TokenKind::Param: return "PARAM";
    case TokenKind::Return: return "RETURN";
    case TokenKind::Train: return "TRAIN";
    case TokenKind::Fn: return "FN";
    case TokenKind::Const: return "CONST";
    case TokenKind::LParen: return "LPAREN";
    case TokenKind::RParen: return "RPAREN";
    case TokenKind::LBrace: return "LBRACE";
    case TokenKind::RBrace: return "RBRACE";
    case TokenKind::LBracket: return "LBRACKET";
    case TokenKind::RBracket: return "RBRACKET";
    case TokenKind::Comma: return "COMMA";
    case TokenKind::Colon: return "COLON";
    case TokenKind::Equal: return "EQUAL";
    case TokenKind::Plus: return "PLUS";
    case TokenKind::Minus: return "MINUS";
    case TokenKind::Star: return "STAR";
    case TokenKind::Slash: return "SLASH";
    case TokenKind::At: return "AT";
    case TokenKind::Semicolon: return "SEMICOLON";
    case TokenKind::Error: return "ERROR";
    case TokenKind::Eof: return "EOF";
  }
  return "?";
}

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isIdentChar(char c) { return isIdentStart(c) || isDigit(c); }

TokenKind keywordOrIdent(std::string_view text) {
  if (text == "model") return TokenKind::Model;
  if (text == "param") return TokenKind::Param;
  if (text == "return") return TokenKind::Return;
  if (text == "train") return TokenKind::Train;
  if (text == "fn") return TokenKind::Fn;
  if (text == "const") return TokenKind::Const;
  return TokenKind::Identifier;
}

TokenKind punctuation(char c) {
  switch (c) {
    case '(': return TokenKind::LParen;
    case ')': return TokenKind::RParen;
    case '{': return TokenKind::LBrace;
    case '}': return TokenKind::RBrace;
    case '[': return TokenKind::LBracket;
    case ']': return TokenKind::RBracket;
    case ',': return TokenKind::Comma;
    case ':': return TokenKind::Colon;
    case '=': return TokenKind::Equal;
    case '+': return TokenKind::Plus;
    case '-': return TokenKind::Minus;
    case '*': return TokenKind::Star;
    case '/': return TokenKind::Slash;
    case '@': return TokenKind::At;
    case ';': return TokenKind::Semicolon;
    default: return TokenKind::Error;
  }
}

class Lexer {
 public:
  Lexer(const SourceFile& source, DiagnosticEngine& diags) : text_(source.text()), diags_(diags) {}

  std::vector<Token> run() {
    std::vector<Token> tokens;
    for (;;) {
      skipSpaceAndComments();
      Token token = next();
      token.starts_line = at_line_start_;
      at_line_start_ = false;
      tokens.push_back(std::move(token));
      if (tokens.back().kind == TokenKind::Eof) return tokens;
    }
  }

 private:
  char peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  bool atEnd() const { return pos_ >= text_.size(); }

  Token make(TokenKind kind, size_t begin) const {
    return Token{kind, Span{static_cast<uint32_t>(begin), static_cast<uint32_t>(pos_)}, {}, false};
  }

  void skipSpaceAndComments() {
    while (!atEnd()) {
      char c = peek();
      if (c == '\n') {
        at_line_start_ = true;
        ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (!atEnd() && peek() != '\n') ++pos_;
      } else {
        return;
      }
    }
  }

  Token next() {
    size_t begin = pos_;
    if (atEnd()) return make(TokenKind::Eof, begin);
    char c = peek();
    if (isIdentStart(c)) return identifier();
    if (isDigit(c) || (c == '.' && isDigit(peek(1)))) return number();
    if (c == '"') return string();
    ++pos_;
    TokenKind kind = punctuation(c);
    if (kind == TokenKind::Error) unexpectedCharacter(begin);
    return make(kind, begin);
  }

  // Reports the character at `begin`; a multi-byte UTF-8 character becomes one Error token, not several, named
  // by its code point (some are invisible: a byte-order mark, a no-break space); a byte that starts no character
  // by its value.
  void unexpectedCharacter(size_t begin) {
    unsigned char c = static_cast<unsigned char>(text_[begin]);
    uint32_t code = c >= 0xf0 ? c & 0x07u : c >= 0xe0 ? c & 0x0fu : c & 0x1fu;
    if (c >= 0xc0 && c < 0xf8) {
      while ((static_cast<unsigned char>(peek()) & 0xc0) == 0x80)  // continuation bytes
        code = (code << 6) | (static_cast<unsigned char>(text_[pos_++]) & 0x3fu);
    }
    std::string shown;
    if (c >= 0x20 && c < 0x7f) shown = fmt::format("'{}'", static_cast<char>(c));
    else if (code == 0xfeff && pos_ > begin + 1) shown = "U+FEFF (a byte-order mark)";
    else if (c >= 0xc0 && c < 0xf8 && pos_ > begin + 1)
      shown = fmt::format("'{}' (U+{:04X})", text_.substr(begin, pos_ - begin), code);
    else shown = fmt::format("byte 0x{:02x}", c);
    diags_.report(DiagKind::UnexpectedCharacter, Span{static_cast<uint32_t>(begin), static_cast<uint32_t>(pos_)},
                 fmt::format("unexpected character {}", shown));
  }

  /// IDENT = [A-Za-z_][A-Za-z0-9_]*   (keywords: model param return train)
  Token identifier() {
    size_t begin = pos_;
    while (isIdentChar(peek())) ++pos_;
    return make(keywordOrIdent(text_.substr(begin, pos_ - begin)), begin);
  }

  /// NUMBER = digits [ "." digits ] [ ("e"|"E") ["+"|"-"] digits ]  |  "." digits [ exponent ]
  Token number() {
    size_t begin = pos_;
    while (isDigit(peek())) ++pos_;
    if (peek() == '.' && isDigit(peek(1))) {
      ++pos_;
      while (isDigit(peek())) ++pos_;
    } else if (peek() == '.' && pos_ > begin) {
      ++pos_;  // `3.` is a number too
    }
    // An exponent only counts if digits follow; otherwise `e` starts the next identifier.
    size_t sign = (peek(1) == '+' || peek(1) == '-') ? 1 : 0;
    if ((peek() == 'e' || peek() == 'E') && isDigit(peek(1 + sign))) {
      pos_ += 1 + sign;
      while (isDigit(peek())) ++pos_;
    }
    return make(TokenKind::Number, begin);
  }

  /// STRING = '"' { char | "\\" | "\"" | "\n" | "\t" } '"'   (on one line)
  Token string() {
    size_t begin = pos_++;
    std::string value;
    while (!atEnd() && peek() != '"' && peek() != '\n') {
      char c = text_[pos_++];
      if (c == '\\') c = escape(pos_ - 1);
      value += c;
    }
    if (peek() != '"') {
      diags_.report(DiagKind::UnterminatedString, Span{static_cast<uint32_t>(begin), static_cast<uint32_t>(pos_)}, "unterminated string");
      return make(TokenKind::Error, begin);
    }
    ++pos_;
    Token token = make(TokenKind::String, begin);
    token.value = std::move(value);
    return token;
  }

  // Resolves the escape whose backslash is at `at`; pos_ is just past the backslash.
  char escape(size_t at) {
    char c = peek();
    switch (c) {
      case '\\': ++pos_; return '\\';
      case '"': ++pos_; return '"';
      case 'n': ++pos_; return '\n';
      case 't': ++pos_; return '\t';
      default: break;
    }
    uint32_t end = static_cast<uint32_t>(at + (c == '\n' || c == '\0' ? 1 : 2));
    diags_.report(DiagKind::UnknownEscape, Span{static_cast<uint32_t>(at), end}, "unknown escape in string (valid: `\\\\`, `\\\"`, `\\n`, `\\t`)");
    if (c != '\n' && c != '\0') ++pos_;
    return c;
  }

  std::string_view text_;
  DiagnosticEngine& diags_;
  size_t pos_ = 0;
  bool at_line_start_ = true;
};

}  // namespace

std::vector<Token> lex(const SourceFile& source, DiagnosticEngine& diags) { return Lexer(source, diags).run(); }

std::string printTokens(const SourceFile& source, const std::vector<Token>& tokens) {
  std::string out;
  for (const Token& token : tokens) {
    LineCol pos = source.lineCol(token.span.begin);
    out += fmt::format("{}:{} {} '{}'\n", pos.line, pos.col, tokenKindName(token.kind), source.slice(token.span));
  }
  return out;
}

}  // namespace nnc::dsl
