// Lexer tests: token kinds and spans, numbers, strings and escapes, comments, and error tokens with
// their rendered diagnostics.
#include <gtest/gtest.h>

#include "dsl/lexer.h"

namespace nnc::dsl {
namespace {

struct Lexed {
  SourceFile source;
  DiagnosticEngine diags{source};
  std::vector<Token> tokens;
  explicit Lexed(std::string text) : source("t.nn", std::move(text)) { tokens = lex(source, diags); }
};

std::vector<TokenKind> kinds(const std::vector<Token>& tokens) {
  std::vector<TokenKind> out;
  for (const Token& t : tokens) out.push_back(t.kind);
  return out;
}

TEST(Lexer, KeywordsIdentifiersAndPunctuation) {
  Lexed l("model m(x: f32[B]) { param W = x @ y; return -a*b/c+d }\ntrain");
  using K = TokenKind;
  std::vector<K> expected = {K::Model,  K::Identifier, K::LParen,    K::Identifier, K::Colon,      K::Identifier,
                             K::LBracket, K::Identifier, K::RBracket, K::RParen,     K::LBrace,     K::Param,
                             K::Identifier, K::Equal,    K::Identifier, K::At,       K::Identifier, K::Semicolon,
                             K::Return,   K::Minus,      K::Identifier, K::Star,     K::Identifier, K::Slash,
                             K::Identifier, K::Plus,     K::Identifier, K::RBrace,   K::Train,      K::Eof};
  EXPECT_EQ(kinds(l.tokens), expected);
  EXPECT_FALSE(l.diags.hasErrors());
}

TEST(Lexer, Numbers) {
  Lexed l("3 0.05 1e-3 .5 2E+4 7.");
  std::vector<std::string> texts;
  for (const Token& t : l.tokens) {
    if (t.kind == TokenKind::Number) texts.push_back(std::string(l.source.slice(t.span)));
  }
  EXPECT_EQ(texts, (std::vector<std::string>{"3", "0.05", "1e-3", ".5", "2E+4", "7."}));
  EXPECT_FALSE(l.diags.hasErrors());
}

TEST(Lexer, ExponentNeedsDigitsOtherwiseIdentifierFollows) {
  Lexed l("2e x");
  EXPECT_EQ(kinds(l.tokens),
            (std::vector<TokenKind>{TokenKind::Number, TokenKind::Identifier, TokenKind::Identifier, TokenKind::Eof}));
}

TEST(Lexer, StringEscapes) {
  Lexed l(R"("a\\b\"c\nd\te")");
  ASSERT_EQ(l.tokens[0].kind, TokenKind::String);
  EXPECT_EQ(l.tokens[0].value, "a\\b\"c\nd\te");
  EXPECT_FALSE(l.diags.hasErrors());
}

TEST(Lexer, CommentsAndLineStarts) {
  Lexed l("# header\na = 1 # trailing\n  b");
  ASSERT_EQ(l.tokens.size(), 5u);
  EXPECT_TRUE(l.tokens[0].starts_line);   // a
  EXPECT_FALSE(l.tokens[1].starts_line);  // =
  EXPECT_TRUE(l.tokens[3].starts_line);   // b
  EXPECT_EQ(l.source.lineCol(l.tokens[3].span.begin).line, 3u);
  EXPECT_EQ(l.source.lineCol(l.tokens[3].span.begin).col, 3u);
}

TEST(Lexer, UnexpectedCharacterIsAnErrorTokenAndLexingContinues) {
  Lexed l("a = $b\nc = 1");
  EXPECT_EQ(l.tokens[2].kind, TokenKind::Error);
  EXPECT_EQ(l.tokens[3].kind, TokenKind::Identifier);
  EXPECT_EQ(l.diags.render(),
            "t.nn:1:5: error: unexpected character '$'\n"
            "    a = $b\n"
            "        ^\n");
}

TEST(Lexer, NonAsciiCharacterIsOneError) {
  Lexed l("a = \xc3\xa9 \x01");
  EXPECT_EQ(kinds(l.tokens), (std::vector<TokenKind>{TokenKind::Identifier, TokenKind::Equal, TokenKind::Error,
                                                     TokenKind::Error, TokenKind::Eof}));
  ASSERT_EQ(l.diags.diagnostics().size(), 2u);
  EXPECT_EQ(l.diags.diagnostics()[0].message, "unexpected character '\xc3\xa9' (U+00E9)");
  EXPECT_EQ(l.diags.diagnostics()[1].message, "unexpected character byte 0x01");
}

// Invisible characters are named: a byte-order mark inside the file (one at its start is dropped when read), a
// byte that starts no UTF-8 character.
TEST(Lexer, InvisibleAndInvalidBytesAreNamed) {
  Lexed l("a \xef\xbb\xbf \xff");
  ASSERT_EQ(l.diags.diagnostics().size(), 2u);
  EXPECT_EQ(l.diags.diagnostics()[0].message, "unexpected character U+FEFF (a byte-order mark)");
  EXPECT_EQ(l.diags.diagnostics()[1].message, "unexpected character byte 0xff");
}

TEST(Lexer, UnterminatedString) {
  Lexed l("data = \"abc\nx");
  EXPECT_EQ(l.tokens[2].kind, TokenKind::Error);
  EXPECT_EQ(l.tokens[3].kind, TokenKind::Identifier);
  EXPECT_EQ(l.diags.render(),
            "t.nn:1:8: error: unterminated string\n"
            "    data = \"abc\n"
            "           ^~~~\n");
}

TEST(Lexer, UnknownEscape) {
  Lexed l(R"(s = "a\qb")");
  EXPECT_EQ(l.diags.render(),
            "t.nn:1:7: error: unknown escape in string (valid: `\\\\`, `\\\"`, `\\n`, `\\t`)\n"
            "    s = \"a\\qb\"\n"
            "          ^~\n");
}

TEST(Lexer, EveryPunctuationToken) {
  Lexed l("(){}[],:=+-*/@;");
  std::string printed = printTokens(l.source, l.tokens);
  EXPECT_EQ(printed,
            "1:1 LPAREN '('\n1:2 RPAREN ')'\n1:3 LBRACE '{'\n1:4 RBRACE '}'\n1:5 LBRACKET '['\n"
            "1:6 RBRACKET ']'\n1:7 COMMA ','\n1:8 COLON ':'\n1:9 EQUAL '='\n1:10 PLUS '+'\n1:11 MINUS '-'\n"
            "1:12 STAR '*'\n1:13 SLASH '/'\n1:14 AT '@'\n1:15 SEMICOLON ';'\n1:16 EOF ''\n");
  EXPECT_FALSE(l.diags.hasErrors());
}

TEST(Lexer, PrintTokens) {
  Lexed l("x = f(1)");
  EXPECT_EQ(printTokens(l.source, l.tokens),
            "1:1 IDENT 'x'\n"
            "1:3 EQUAL '='\n"
            "1:5 IDENT 'f'\n"
            "1:6 LPAREN '('\n"
            "1:7 NUMBER '1'\n"
            "1:8 RPAREN ')'\n"
            "1:9 EOF ''\n");
}

TEST(Diagnostics, TabsAlignTheCaretAndNotesFollow) {
  SourceFile source("t.nn", "\tab = cd\nx");
  DiagnosticEngine diags(source);
  Diagnostic& diag = diags.report(DiagKind::UndefinedName, Span{6, 8}, "undefined name `cd`");
  DiagnosticEngine::note(diag, Span{9, 10}, "see `x`");
  diags.report(DiagKind::UnusedName, Span{1, 3}, "unused `ab`");
  EXPECT_EQ(diags.render(),
            "t.nn:1:7: error: undefined name `cd`\n"
            "    \tab = cd\n"
            "    \t     ^~\n"
            "t.nn:2:1: note: see `x`\n"
            "    x\n"
            "    ^\n"
            "t.nn:1:2: warning: unused `ab`\n"
            "    \tab = cd\n"
            "    \t^~\n");
  EXPECT_TRUE(diags.hasErrors());
}

TEST(Diagnostics, SpanOverManyLinesStopsAtLineEnd) {
  SourceFile source("t.nn", "abc\ndef");
  DiagnosticEngine diags(source);
  diags.report(DiagKind::UnusedName, Span{1, 6}, "w");
  EXPECT_FALSE(diags.hasErrors());
  EXPECT_EQ(diags.render(), "t.nn:1:2: warning: w\n    abc\n     ^~\n");
}

}  // namespace
}  // namespace nnc::dsl
