/* common/json.c: a strict JSON parser (RFC 8259) and a string builder.
 *
 * A recursive-descent parser: one function per kind of value, each called
 * with the parser positioned on the value's first byte.  Every input byte is
 * distrusted: nesting is limited to JSON_MAX_DEPTH so a hostile header cannot
 * overflow the stack, strings are checked for raw control characters and bad
 * escapes, numbers must follow the JSON grammar exactly, and anything after
 * the top-level value other than whitespace is an error.  Errors carry the
 * byte offset, so "JSON byte 1234: expected ','" points into the file.
 *
 * Shapes: none here; text is (size) bytes, not necessarily NUL-terminated.
 */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The parser's state --------------------------------------------------- */

typedef struct {
    const char *text; /* (size) the input bytes             */
    size_t size;
    size_t pos;       /* next byte to read                  */
    Error *err;
} JsonParser;

/* Longest number token accepted; far beyond any double's useful digits. */
enum { JSON_MAX_NUMBER_CHARS = 512 };

static bool parse_value(JsonParser *p, JsonValue *out, int depth);

static bool parse_fail(JsonParser *p, const char *what) {
    return error_set(p->err, "JSON byte %zu: %s", p->pos, what);
}

static bool parse_fail_too_deep(JsonParser *p) {
    return error_set(p->err, "JSON byte %zu: arrays/objects nested deeper than %d", p->pos, JSON_MAX_DEPTH);
}

static bool at_end(const JsonParser *p) { return p->pos >= p->size; }

/* The next byte, or '\0' at the end: callers compare it with a non-NUL
 * byte, so the end (or a stray NUL in the input) simply never matches. */
static char peek(const JsonParser *p) { return at_end(p) ? '\0' : p->text[p->pos]; }

/* JSON whitespace is exactly these four bytes (not \f or \v). */
static void skip_whitespace(JsonParser *p) {
    while (!at_end(p)) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static bool expect_byte(JsonParser *p, char wanted, const char *what) {
    skip_whitespace(p);
    if (peek(p) != wanted) return parse_fail(p, what);
    p->pos++;
    return true;
}

/* ---- Literals and numbers -------------------------------------------------- */

static bool parse_literal(JsonParser *p, JsonValue *out) {
    static const struct { const char *word; JsonType type; bool boolean; } literals[] = {
        {"true", JSON_BOOL, true}, {"false", JSON_BOOL, false}, {"null", JSON_NULL, false}};
    for (size_t i = 0; i < sizeof literals / sizeof literals[0]; i++) {
        size_t length = strlen(literals[i].word);
        if (p->size - p->pos >= length && memcmp(p->text + p->pos, literals[i].word, length) == 0) {
            out->type = literals[i].type;
            out->boolean = literals[i].boolean;
            p->pos += length;
            return true;
        }
    }
    return parse_fail(p, "expected a value (object, array, string, number, true, false or null)");
}

static size_t skip_digits(JsonParser *p) {
    size_t start = p->pos;
    while (!at_end(p) && p->text[p->pos] >= '0' && p->text[p->pos] <= '9') p->pos++;
    return p->pos - start;
}

/* number = [-] (0 | [1-9][0-9]*) [. [0-9]+] [(e|E) [+|-] [0-9]+]
 * The grammar is checked here byte by byte; strtod then only converts, so
 * inputs it would accept but JSON forbids ("0x1F", "inf", ".5", "01") fail. */
static bool parse_number(JsonParser *p, JsonValue *out) {
    size_t start = p->pos;
    if (peek(p) == '-') p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (skip_digits(p) == 0) {
        return parse_fail(p, "expected a digit in a number");
    }
    if (peek(p) == '.') {
        p->pos++;
        if (skip_digits(p) == 0) return parse_fail(p, "expected a digit after '.' in a number");
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-') p->pos++;
        if (skip_digits(p) == 0) return parse_fail(p, "expected a digit in a number's exponent");
    }
    size_t length = p->pos - start;
    if (length > JSON_MAX_NUMBER_CHARS) return parse_fail(p, "number has too many characters");
    /* strtod needs a NUL-terminated copy; the text itself may not have one.
     * (It reads '.' as the decimal point because tinyzoo never calls
     * setlocale, so the "C" locale is in force.) */
    char token[JSON_MAX_NUMBER_CHARS + 1];
    memcpy(token, p->text + start, length);
    token[length] = '\0';
    double value = strtod(token, NULL);
    if (isinf(value)) return parse_fail(p, "number is too large for a double");
    out->type = JSON_NUMBER;
    out->number = value;
    return true;
}

/* ---- Strings ---------------------------------------------------------------- */

static int hex_digit_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The four hex digits after "\u" (p->pos is on the 'u'); -1 if malformed. */
static long read_hex4(JsonParser *p) {
    if (p->size - p->pos < 5) return -1;
    long code = 0;
    for (int i = 1; i <= 4; i++) {
        int digit = hex_digit_value(p->text[p->pos + (size_t)i]);
        if (digit < 0) return -1;
        code = code * 16 + digit;
    }
    p->pos += 5;
    return code;
}

/* Writes code point `code` (< 0x110000, not a surrogate) as UTF-8. */
static size_t encode_utf8(unsigned long code, char *out) {
    if (code < 0x80) {
        out[0] = (char)code;
        return 1;
    }
    if (code < 0x800) {
        out[0] = (char)(0xC0 | (code >> 6));
        out[1] = (char)(0x80 | (code & 0x3F));
        return 2;
    }
    if (code < 0x10000) {
        out[0] = (char)(0xE0 | (code >> 12));
        out[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        out[2] = (char)(0x80 | (code & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (code >> 18));
    out[1] = (char)(0x80 | ((code >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((code >> 6) & 0x3F));
    out[3] = (char)(0x80 | (code & 0x3F));
    return 4;
}

/* "\uXXXX", or a UTF-16 surrogate pair "\uD83D\uDE00" for code points above
 * U+FFFF: the high half (D800-DBFF) must be followed by a low half
 * (DC00-DFFF); either half alone is not a character and is rejected. */
static bool decode_unicode_escape(JsonParser *p, char *out, size_t *written) {
    long code = read_hex4(p);
    if (code < 0) return parse_fail(p, "expected four hex digits after \\u");
    if (code >= 0xDC00 && code <= 0xDFFF) return parse_fail(p, "lone low surrogate in \\u escape");
    if (code >= 0xD800 && code <= 0xDBFF) {
        if (p->size - p->pos < 2 || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u')
            return parse_fail(p, "high surrogate \\u escape not followed by a low surrogate");
        p->pos++; /* onto the 'u' */
        long low = read_hex4(p);
        if (low < 0xDC00 || low > 0xDFFF)
            return parse_fail(p, "high surrogate \\u escape not followed by a low surrogate");
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    /* Decoded strings are NUL-terminated C strings, so a NUL would silently
     * cut them short: refuse it instead. */
    if (code == 0) return parse_fail(p, "\\u0000 is not allowed in strings");
    *written = encode_utf8((unsigned long)code, out);
    return true;
}

/* One escape; p->pos is on the byte after the backslash. */
static bool decode_escape(JsonParser *p, char *out, size_t *written) {
    char c = peek(p);
    const char *simple_from = "\"\\/bfnrt";
    const char *simple_to = "\"\\/\b\f\n\r\t";
    const char *found = c == '\0' ? NULL : strchr(simple_from, c); /* strchr finds the NUL too */
    if (found != NULL) {
        *out = simple_to[found - simple_from];
        *written = 1;
        p->pos++;
        return true;
    }
    if (c == 'u') return decode_unicode_escape(p, out, written);
    return parse_fail(p, "invalid escape in string (expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
}

/* A quoted string, decoded into a new NUL-terminated buffer.  The decoded
 * form is never longer than the quoted one (every escape shrinks or keeps
 * its length), so one allocation of the raw length suffices. */
static bool parse_string_raw(JsonParser *p, char **out) {
    if (peek(p) != '"') return parse_fail(p, "expected '\"' to start a string");
    size_t scan = p->pos + 1;
    while (scan < p->size && p->text[scan] != '"') scan += p->text[scan] == '\\' ? 2 : 1;
    if (scan >= p->size) return parse_fail(p, "unterminated string");
    char *decoded = xmalloc(scan - p->pos);
    size_t length = 0;
    p->pos++;
    while (p->text[p->pos] != '"') {
        unsigned char c = (unsigned char)p->text[p->pos];
        size_t written = 1;
        bool ok = true;
        if (c < 0x20) {
            ok = parse_fail(p, "control character in string (must be escaped)");
        } else if (c == '\\') {
            p->pos++;
            ok = decode_escape(p, decoded + length, &written);
        } else {
            decoded[length] = (char)c;
            p->pos++;
        }
        if (!ok) {
            free(decoded);
            return false;
        }
        length += written;
    }
    p->pos++; /* the closing quote */
    decoded[length] = '\0';
    *out = decoded;
    return true;
}

/* ---- Arrays and objects ---------------------------------------------------- */

/* Makes room for one more item (and key, for objects) in a container. */
static bool grow_container(JsonParser *p, JsonValue *container, int *capacity) {
    if (container->count < *capacity) return true;
    if (*capacity > (1 << 28)) return parse_fail(p, "too many items in one array or object");
    *capacity = *capacity == 0 ? 4 : 2 * *capacity;
    container->items = xrealloc(container->items, (size_t)*capacity * sizeof *container->items);
    if (container->type == JSON_OBJECT)
        container->keys = xrealloc(container->keys, (size_t)*capacity * sizeof *container->keys);
    return true;
}

/* '[' value (',' value)* ']'  or  '{' key ':' value (',' key ':' value)* '}'
 * One function for both, since they differ only by the key before each item.
 * On failure the partly built container is left for the caller to free. */
static bool parse_container(JsonParser *p, JsonValue *out, int depth) {
    bool is_object = peek(p) == '{';
    char closing = is_object ? '}' : ']';
    if (depth >= JSON_MAX_DEPTH) return parse_fail_too_deep(p);
    out->type = is_object ? JSON_OBJECT : JSON_ARRAY;
    p->pos++;
    skip_whitespace(p);
    if (peek(p) == closing) {
        p->pos++;
        return true;
    }
    int capacity = 0;
    for (;;) {
        if (!grow_container(p, out, &capacity)) return false;
        JsonValue *item = &out->items[out->count];
        memset(item, 0, sizeof *item);
        skip_whitespace(p);
        if (is_object) {
            if (!parse_string_raw(p, &out->keys[out->count])) return false;
            out->count++; /* from here the key and item belong to `out` */
            if (!expect_byte(p, ':', "expected ':' after an object key")) return false;
        } else {
            out->count++;
        }
        if (!parse_value(p, item, depth + 1)) return false;
        skip_whitespace(p);
        if (peek(p) == ',') {
            p->pos++;
            continue;
        }
        return expect_byte(p, closing, is_object ? "expected ',' or '}' in object" : "expected ',' or ']' in array");
    }
}

/* `depth` counts the arrays and objects around this value. */
static bool parse_value(JsonParser *p, JsonValue *out, int depth) {
    skip_whitespace(p);
    if (at_end(p)) return parse_fail(p, "unexpected end of input, expected a value");
    char c = p->text[p->pos];
    if (c == '{' || c == '[') return parse_container(p, out, depth);
    if (c == '"') {
        out->type = JSON_STRING;
        return parse_string_raw(p, &out->string);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, out);
    return parse_literal(p, out);
}

bool json_parse(const char *text, size_t size, JsonValue *out, Error *err) {
    JsonParser parser = {.text = text, .size = size, .pos = 0, .err = err};
    memset(out, 0, sizeof *out);
    bool ok = parse_value(&parser, out, 0);
    if (ok) {
        skip_whitespace(&parser);
        if (!at_end(&parser)) ok = parse_fail(&parser, "unexpected data after the JSON value");
    }
    if (!ok) {
        json_free(out); /* also frees a half-built tree */
        memset(out, 0, sizeof *out);
    }
    return ok;
}

void json_free(JsonValue *value) {
    if (value == NULL) return;
    for (int i = 0; i < value->count; i++) {
        json_free(&value->items[i]);
        if (value->keys != NULL) free(value->keys[i]);
    }
    free(value->items);
    free(value->keys);
    free(value->string);
    memset(value, 0, sizeof *value);
}

const JsonValue *json_get(const JsonValue *object, const char *key) {
    if (object == NULL || object->type != JSON_OBJECT) return NULL;
    for (int i = 0; i < object->count; i++)
        if (strcmp(object->keys[i], key) == 0) return &object->items[i];
    return NULL;
}

/* ---- Writing: a growing string ---------------------------------------------- */

/* Room for `extra` more bytes plus the terminating NUL. */
static void sb_reserve(StringBuilder *sb, size_t extra) {
    size_t needed = sb->length + extra + 1;
    if (needed <= sb->capacity) return;
    size_t capacity = sb->capacity == 0 ? 64 : sb->capacity;
    while (capacity < needed) capacity *= 2;
    sb->data = xrealloc(sb->data, capacity);
    sb->capacity = capacity;
}

static void sb_append_bytes(StringBuilder *sb, const char *bytes, size_t count) {
    sb_reserve(sb, count);
    memcpy(sb->data + sb->length, bytes, count);
    sb->length += count;
    sb->data[sb->length] = '\0';
}

void sb_append(StringBuilder *sb, const char *text) { sb_append_bytes(sb, text, strlen(text)); }

void sb_appendf(StringBuilder *sb, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int needed = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (needed < 0) fatal("sb_appendf: bad format \"%s\"", format);
    sb_reserve(sb, (size_t)needed);
    va_start(args, format);
    vsnprintf(sb->data + sb->length, (size_t)needed + 1, format, args);
    va_end(args);
    sb->length += (size_t)needed;
}

/* Quotes, backslashes and the control characters U+0000-U+001F must be
 * escaped in JSON; everything else (including UTF-8) is copied as is. */
void json_append_string(StringBuilder *sb, const char *text) {
    sb_append_bytes(sb, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
        char escaped[8];
        switch (*c) {
        case '"': sb_append_bytes(sb, "\\\"", 2); break;
        case '\\': sb_append_bytes(sb, "\\\\", 2); break;
        case '\n': sb_append_bytes(sb, "\\n", 2); break;
        case '\r': sb_append_bytes(sb, "\\r", 2); break;
        case '\t': sb_append_bytes(sb, "\\t", 2); break;
        case '\b': sb_append_bytes(sb, "\\b", 2); break;
        case '\f': sb_append_bytes(sb, "\\f", 2); break;
        default:
            if (*c < 0x20) {
                snprintf(escaped, sizeof escaped, "\\u%04x", (unsigned)*c);
                sb_append_bytes(sb, escaped, 6);
            } else {
                sb_append_bytes(sb, (const char *)c, 1);
            }
        }
    }
    sb_append_bytes(sb, "\"", 1);
}

void sb_free(StringBuilder *sb) {
    free(sb->data);
    sb->data = NULL;
    sb->length = sb->capacity = 0;
}
