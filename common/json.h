/* common/json.h: the little JSON that safetensors headers and metadata need.
 *
 * A parser into a tree of JsonValue (objects keep their key order), and a
 * string escaper for writing.  The parser never trusts its input: depth,
 * size and every escape are checked, and errors give the byte offset.
 */
#ifndef TINYZOO_JSON_H
#define TINYZOO_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonValue {
    JsonType type;
    bool boolean;
    double number;
    char *string;               /* JSON_STRING: decoded, NUL-terminated       */
    int count;                  /* JSON_ARRAY / JSON_OBJECT: number of items  */
    char **keys;                /* JSON_OBJECT: (count) keys                  */
    struct JsonValue *items;    /* (count) elements or member values          */
} JsonValue;

enum { JSON_MAX_DEPTH = 64 };

/* Parses text[0..size).  On success *out owns its memory (json_free). */
bool json_parse(const char *text, size_t size, JsonValue *out, Error *err);
void json_free(JsonValue *value);
/* Member `key` of an object, or NULL. */
const JsonValue *json_get(const JsonValue *object, const char *key);
/* Appends `text` as a quoted, escaped JSON string to a growing buffer. */
typedef struct {
    char *data;
    size_t length;
    size_t capacity;
} StringBuilder;
void sb_append(StringBuilder *sb, const char *text);
void sb_appendf(StringBuilder *sb, const char *format, ...) __attribute__((format(printf, 2, 3)));
void json_append_string(StringBuilder *sb, const char *text);
void sb_free(StringBuilder *sb);

#endif
