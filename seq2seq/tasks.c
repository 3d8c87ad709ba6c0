/* seq2seq/tasks.c: tokens and vocabularies, the built-in tasks, datasets,
 * padded batches, and corpus BLEU.
 *
 * Legend: B batch, S source steps, T decoder steps (target length + <eos>).
 *
 * Built-in tasks (generated, nothing to download):
 *   copy     "cabd"          -> "cabd"
 *   reverse  "cabd"          -> "dbac"
 *   sort     "cabd"          -> "abcd"
 *   add      "123+45"        -> "168"
 *   dates    "3rd of March 2021", "Mar 3, 2021", "03/03/21", ... -> "2021-03-03"
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seq2seq.h"

/* ======================================================================== */
/* Vocabularies and tokens                                                   */
/* ======================================================================== */

static const char *const SPECIAL_TOKENS[SEQ2SEQ_SPECIALS] = {"<pad>", "<bos>", "<eos>", "<unk>"};

void seq2seq_vocabs_init(Seq2seqVocabs *v, bool words) {
    vocab_init(&v->source);
    vocab_init(&v->target);
    for (int i = 0; i < SEQ2SEQ_SPECIALS; i++) {
        vocab_add(&v->source, SPECIAL_TOKENS[i]);
        vocab_add(&v->target, SPECIAL_TOKENS[i]);
    }
    v->words = words;
}

void seq2seq_vocabs_free(Seq2seqVocabs *v) {
    vocab_free(&v->source);
    vocab_free(&v->target);
}

/* The next token of text at *offset: one UTF-8 character, or one run of
 * non-space bytes when `words`.  Copies it into token (NUL-terminated) and
 * returns its length in bytes; 0 at the end; -1 on invalid UTF-8 or a word
 * longer than token_size - 1 bytes. */
static int next_token(const char *text, size_t *offset, bool words, char *token,
                      size_t token_size) {
    size_t size = strlen(text), at = *offset;
    if (words) {
        while (at < size && (text[at] == ' ' || text[at] == '\t')) at++;
        size_t start = at;
        while (at < size && text[at] != ' ' && text[at] != '\t') at++;
        if (at - start >= token_size) return -1;
        if (utf8_first_invalid(text + start, at - start) >= 0) return -1;
        memcpy(token, text + start, at - start);
        token[at - start] = '\0';
        *offset = at;
        return (int)(at - start);
    }
    if (at >= size) return 0;
    uint32_t codepoint;
    int used = utf8_decode(text + at, size - at, &codepoint);
    if (used == 0) return -1;
    memcpy(token, text + at, (size_t)used);
    token[used] = '\0';
    *offset = at + (size_t)used;
    return used;
}

/* A token the vocabulary lacks is <unk>.  So is a word of the text that
 * spells <pad>, <bos> or <eos>: only the model's own bookkeeping may put
 * those in a sequence (an <eos> in the text would end it early, a <pad>
 * would hide a target from the loss).  A word <unk> is the unknown token,
 * as it means in corpora such as the Penn Treebank's. */
int seq2seq_tokenize(const Vocab *vocab, bool words, const char *text, int *ids, int max_ids) {
    char token[256];
    size_t offset = 0;
    int count = 0, length;
    while ((length = next_token(text, &offset, words, token, sizeof token)) > 0) {
        if (count == max_ids) return -1;
        int id = vocab_find(vocab, token);
        ids[count++] = id >= SEQ2SEQ_UNK ? id : SEQ2SEQ_UNK;
    }
    return length < 0 ? -1 : count;
}

bool seq2seq_vocab_add_text(Vocab *vocab, bool words, const char *text) {
    char token[256];
    size_t offset = 0;
    int length;
    while ((length = next_token(text, &offset, words, token, sizeof token)) > 0)
        vocab_add(vocab, token);
    return length == 0;
}

void seq2seq_detokenize(const Vocab *vocab, bool words, const int *ids, int count, char *out,
                        size_t out_size) {
    size_t used = 0;
    if (out_size == 0) return;
    out[0] = '\0';
    for (int i = 0; i < count && ids[i] != SEQ2SEQ_EOS; i++) {
        const char *token = ids[i] >= 0 && ids[i] < vocab->size ? vocab->tokens[ids[i]] : "<?>";
        int written = snprintf(out + used, out_size - used, "%s%s", words && i > 0 ? " " : "", token);
        if (written < 0 || (size_t)written >= out_size - used) break; /* truncated */
        used += (size_t)written;
    }
}

/* ======================================================================== */
/* Datasets                                                                  */
/* ======================================================================== */

static int *copy_ids(const int *ids, int count) {
    int *copy = xmalloc((size_t)(count > 0 ? count : 1) * sizeof(int));
    memcpy(copy, ids, (size_t)count * sizeof(int));
    return copy;
}

void seq2seq_dataset_add(Seq2seqDataset *d, const int *source, int source_length,
                         const int *target, int target_length) {
    /* Grow in powers of two: count is a power of two exactly when full. */
    if ((d->count & (d->count - 1)) == 0)
        d->pairs = xrealloc(d->pairs, (size_t)(d->count ? 2 * d->count : 1) * sizeof *d->pairs);
    d->pairs[d->count++] = (Seq2seqPair){copy_ids(source, source_length), source_length,
                                         copy_ids(target, target_length), target_length};
}

void seq2seq_dataset_free(Seq2seqDataset *d) {
    for (int i = 0; i < d->count; i++) {
        free(d->pairs[i].source);
        free(d->pairs[i].target);
    }
    free(d->pairs);
    d->pairs = NULL;
    d->count = 0;
}

/* ======================================================================== */
/* Built-in tasks                                                            */
/* ======================================================================== */

static const char *const TASK_NAMES[SEQ2SEQ_TASK_COUNT] = {"copy", "reverse", "sort", "add", "dates"};
static const char LETTERS[] = "abcdefghijklmnopqrstuvwxyz";
static const char DIGITS[] = "0123456789";
/* Every character a date format can write (see DATE_FORMATS below). */
static const char DATE_CHARACTERS[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,./-";

const char *seq2seq_task_name(int task) {
    return task >= 0 && task < SEQ2SEQ_TASK_COUNT ? TASK_NAMES[task] : "?";
}

int seq2seq_task_from_name(const char *name) {
    for (int t = 0; t < SEQ2SEQ_TASK_COUNT; t++)
        if (strcmp(name, TASK_NAMES[t]) == 0) return t;
    return -1;
}

static void add_characters(Vocab *vocab, const char *characters, int count) {
    for (int i = 0; i < count; i++) vocab_add(vocab, (char[2]){characters[i], '\0'});
}

void seq2seq_task_vocabs(const Seq2seqTaskSpec *spec, Seq2seqVocabs *v) {
    seq2seq_vocabs_init(v, false);
    switch (spec->task) {
    case SEQ2SEQ_TASK_ADD:
        add_characters(&v->source, "0123456789+", 11);
        add_characters(&v->target, DIGITS, 10);
        break;
    case SEQ2SEQ_TASK_DATES:
        add_characters(&v->source, DATE_CHARACTERS, (int)strlen(DATE_CHARACTERS));
        add_characters(&v->target, "0123456789-", 11);
        break;
    default:
        add_characters(&v->source, LETTERS, spec->symbols);
        add_characters(&v->target, LETTERS, spec->symbols);
        break;
    }
}

static int uniform_between(Rng *rng, int low, int high) {
    return low + (int)rng_below(rng, (uint32_t)(high - low + 1));
}

static int compare_chars(const void *a, const void *b) {
    return *(const char *)a - *(const char *)b;
}

/* copy / reverse / sort over the first `symbols` letters. */
static void letters_example(const Seq2seqTaskSpec *spec, Rng *rng, char *source, char *target) {
    int length = uniform_between(rng, spec->min_length, spec->max_length);
    for (int i = 0; i < length; i++) source[i] = LETTERS[rng_below(rng, (uint32_t)spec->symbols)];
    source[length] = '\0';
    for (int i = 0; i < length; i++)
        target[i] = spec->task == SEQ2SEQ_TASK_REVERSE ? source[length - 1 - i] : source[i];
    target[length] = '\0';
    if (spec->task == SEQ2SEQ_TASK_SORT) qsort(target, (size_t)length, 1, compare_chars);
}

/* `digits` random decimal digits, no leading zero unless it is "0". */
static void random_number(Rng *rng, int digits, char *out) {
    for (int i = 0; i < digits; i++)
        out[i] = DIGITS[i == 0 && digits > 1 ? 1 + rng_below(rng, 9) : rng_below(rng, 10)];
    out[digits] = '\0';
}

/* Schoolbook addition of two decimal strings, any length. */
static void add_decimal(const char *a, const char *b, char *sum) {
    int la = (int)strlen(a), lb = (int)strlen(b), n = 0, carry = 0;
    char reversed[160];
    for (int i = 0; i < la || i < lb || carry; i++) {
        int digit = carry + (i < la ? a[la - 1 - i] - '0' : 0) + (i < lb ? b[lb - 1 - i] - '0' : 0);
        reversed[n++] = (char)('0' + digit % 10);
        carry = digit / 10;
    }
    for (int i = 0; i < n; i++) sum[i] = reversed[n - 1 - i];
    sum[n] = '\0';
}

/* "a+b" with a total length in [max(3, min), max]. */
static bool add_example(const Seq2seqTaskSpec *spec, Rng *rng, char *source, char *target) {
    int low = spec->min_length > 3 ? spec->min_length : 3;
    if (spec->max_length < low) return false;
    int length = uniform_between(rng, low, spec->max_length);
    int digits_a = uniform_between(rng, 1, length - 2), digits_b = length - 1 - digits_a;
    char a[80], b[80];
    random_number(rng, digits_a, a);
    random_number(rng, digits_b, b);
    snprintf(source, 160, "%s+%s", a, b);
    add_decimal(a, b, target);
    return true;
}

/* ---- dates ------------------------------------------------------------------ */

static const char *const MONTHS[12] = {"January", "February", "March", "April", "May", "June", "July",
                                       "August", "September", "October", "November", "December"};
static const char *const WEEKDAYS[7] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday",
                                        "Friday", "Saturday"};

static bool leap_year(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int year, int month) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && leap_year(year) ? 29 : days[month - 1];
}

/* 0 = Sunday.  Sakamoto's method: count days from a fixed origin, treating
 * January and February as months of the previous year. */
static int weekday(int year, int month, int day) {
    static const int offsets[12] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    if (month < 3) year--;
    return (year + year / 4 - year / 100 + year / 400 + offsets[month - 1] + day) % 7;
}

static const char *ordinal_suffix(int day) {
    if (day % 100 >= 11 && day % 100 <= 13) return "th";
    return day % 10 == 1 ? "st" : day % 10 == 2 ? "nd" : day % 10 == 3 ? "rd" : "th";
}

static void text_case(char *text, bool upper) {
    for (; *text; text++) *text = (char)(upper ? toupper((unsigned char)*text) : tolower((unsigned char)*text));
}

/* The human formats.  Two-digit years ("03/03/21") mean 1950..2049, the
 * range the generator draws from. */
enum { DATE_FORMAT_COUNT = 12 };

int seq2seq_date_format_count(void) { return DATE_FORMAT_COUNT; }

void seq2seq_format_date(int year, int month, int day, int format, char *out, size_t size) {
    const char *name = MONTHS[month - 1], *wday = WEEKDAYS[weekday(year, month, day)];
    switch (format) {
    case 0: snprintf(out, size, "%d%s of %s %d", day, ordinal_suffix(day), name, year); break;
    case 1: snprintf(out, size, "%.3s %d, %d", name, day, year); break;
    case 2: snprintf(out, size, "%02d/%02d/%02d", month, day, year % 100); break;
    case 3: snprintf(out, size, "%s %d, %d", name, day, year); break;
    case 4: snprintf(out, size, "%d %s %d", day, name, year); break;
    case 5: snprintf(out, size, "%02d.%02d.%d", day, month, year); break;
    case 6: snprintf(out, size, "%s, %s %d, %d", wday, name, day, year); break;
    case 7: snprintf(out, size, "%d %.3s %d", day, name, year), text_case(out, false); break;
    case 8: snprintf(out, size, "%s %d, %d", name, day, year), text_case(out, true); break;
    case 9: snprintf(out, size, "%s %d%s, %d", name, day, ordinal_suffix(day), year), text_case(out, false); break;
    case 10: snprintf(out, size, "%d/%d/%d", month, day, year); break;
    default: snprintf(out, size, "%.3s %d %.3s %d", wday, day, name, year); break;
    }
}

static bool dates_example(const Seq2seqTaskSpec *spec, Rng *rng, char *source, char *target,
                          size_t size) {
    for (int attempt = 0; attempt < 1000; attempt++) {
        int year = uniform_between(rng, 1950, 2049), month = uniform_between(rng, 1, 12);
        int day = uniform_between(rng, 1, days_in_month(year, month));
        seq2seq_format_date(year, month, day, (int)rng_below(rng, DATE_FORMAT_COUNT), source, size);
        int length = (int)strlen(source);
        if (length < spec->min_length || length > spec->max_length) continue;
        snprintf(target, size, "%04d-%02d-%02d", year, month, day);
        return true;
    }
    return false;
}

bool seq2seq_task_text(const Seq2seqTaskSpec *spec, Rng *rng, char *source, char *target,
                       size_t size) {
    if (size < 160) fatal("seq2seq_task_text: buffers of %zu bytes; 160 are needed", size);
    if (spec->min_length < 1 || spec->max_length < spec->min_length || spec->max_length > 64)
        return false;
    switch (spec->task) {
    case SEQ2SEQ_TASK_ADD: return add_example(spec, rng, source, target);
    case SEQ2SEQ_TASK_DATES: return dates_example(spec, rng, source, target, size);
    default: letters_example(spec, rng, source, target); return true;
    }
}

int seq2seq_task_max_target(const Seq2seqTaskSpec *spec) {
    switch (spec->task) {
    case SEQ2SEQ_TASK_ADD: return spec->max_length - 1; /* at most one digit more than the longer operand */
    case SEQ2SEQ_TASK_DATES: return 10;                 /* YYYY-MM-DD */
    default: return spec->max_length;
    }
}

/* ======================================================================== */
/* Padded batches                                                            */
/* ======================================================================== */

void seq2seq_batch_init(Seq2seqBatch *batch, int max_batch, int max_source, int max_target) {
    memset(batch, 0, sizeof *batch);
    batch->capacity_batch = max_batch;
    batch->capacity_source = max_source;
    batch->capacity_target = max_target;
    size_t source_cells = (size_t)max_batch * max_source;
    size_t target_cells = (size_t)max_batch * (max_target + 1); /* + <eos> */
    batch->source = xmalloc(source_cells * sizeof(int));
    batch->source_lengths = xmalloc((size_t)max_batch * sizeof(int));
    batch->decoder_inputs = xmalloc(target_cells * sizeof(int));
    batch->targets = xmalloc(target_cells * sizeof(int));
    batch->target_lengths = xmalloc((size_t)max_batch * sizeof(int));
}

void seq2seq_batch_free(Seq2seqBatch *batch) {
    free(batch->source);
    free(batch->source_lengths);
    free(batch->decoder_inputs);
    free(batch->targets);
    free(batch->target_lengths);
    memset(batch, 0, sizeof *batch);
}

/* Time-major: position t of row b is at [t * B + b].
 *   decoder_inputs[t] = <bos>, y_1 .. y_n, <pad> ...
 *   targets[t]        = y_1 .. y_n, <eos>, ignored ... */
void seq2seq_batch_fill(Seq2seqBatch *batch, const Seq2seqPair *pairs, const int *indices,
                        int count) {
    if (count < 1 || count > batch->capacity_batch)
        fatal("seq2seq_batch_fill: %d rows, capacity %d", count, batch->capacity_batch);
    int S = 1, T = 1;
    for (int b = 0; b < count; b++) {
        const Seq2seqPair *p = &pairs[indices ? indices[b] : b];
        if (p->source_length < 1 || p->source_length > batch->capacity_source ||
            p->target_length > batch->capacity_target)
            fatal("seq2seq_batch_fill: lengths %d -> %d exceed the batch's %d -> %d",
                  p->source_length, p->target_length, batch->capacity_source,
                  batch->capacity_target);
        if (p->source_length > S) S = p->source_length;
        if (p->target_length + 1 > T) T = p->target_length + 1;
    }
    batch->B = count, batch->S = S, batch->T = T;
    for (int b = 0; b < count; b++) {
        const Seq2seqPair *p = &pairs[indices ? indices[b] : b];
        batch->source_lengths[b] = p->source_length;
        batch->target_lengths[b] = p->target_length + 1;
        for (int t = 0; t < S; t++)
            batch->source[t * count + b] = t < p->source_length ? p->source[t] : SEQ2SEQ_PAD;
        for (int t = 0; t < T; t++) {
            int n = p->target_length;
            batch->decoder_inputs[t * count + b] =
                t == 0 ? SEQ2SEQ_BOS : t <= n ? p->target[t - 1] : SEQ2SEQ_PAD;
            batch->targets[t * count + b] = t < n ? p->target[t] : t == n ? SEQ2SEQ_EOS : SEQ2SEQ_IGNORE;
        }
    }
}

/* ======================================================================== */
/* Corpus BLEU-4                                                             */
/* ======================================================================== */

static bool same_ngram(const int *a, const int *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static int count_ngram(const int *ngram, int n, const int *tokens, int length) {
    int count = 0;
    for (int i = 0; i + n <= length; i++) count += same_ngram(ngram, tokens + i, n);
    return count;
}

/* Clipped matches of one sentence: each distinct candidate n-gram counts at
 * most as often as it occurs in the reference. */
static long clipped_matches(const int *cand, int cand_length, const int *ref, int ref_length, int n) {
    long matches = 0;
    for (int i = 0; i + n <= cand_length; i++) {
        bool seen_before = false;
        for (int j = 0; j < i && !seen_before; j++) seen_before = same_ngram(cand + i, cand + j, n);
        if (seen_before) continue;
        int in_candidate = count_ngram(cand + i, n, cand, cand_length);
        int in_reference = count_ngram(cand + i, n, ref, ref_length);
        matches += in_candidate < in_reference ? in_candidate : in_reference;
    }
    return matches;
}

/*   p_n  = sum_sentences clipped n-gram matches / sum_sentences candidate n-grams
 *   BP   = 1 if c > r, else exp(1 - r / c)     (c, r: total lengths)
 *   BLEU = BP * exp((1/4) sum_{n=1..4} log p_n), 0 if any p_n is 0. */
Seq2seqBleu seq2seq_corpus_bleu(const int *const *candidates, const int *cand_lengths,
                                const int *const *references, const int *ref_lengths, int count) {
    Seq2seqBleu result;
    memset(&result, 0, sizeof result);
    long matches[4] = {0}, totals[4] = {0};
    for (int s = 0; s < count; s++) {
        result.candidate_length += cand_lengths[s];
        result.reference_length += ref_lengths[s];
        for (int n = 1; n <= 4; n++) {
            matches[n - 1] += clipped_matches(candidates[s], cand_lengths[s], references[s], ref_lengths[s], n);
            totals[n - 1] += cand_lengths[s] >= n ? cand_lengths[s] - n + 1 : 0;
        }
    }
    double log_sum = 0;
    bool any_zero = false;
    for (int n = 0; n < 4; n++) {
        result.precision[n] = totals[n] ? (double)matches[n] / (double)totals[n] : 0.0;
        if (result.precision[n] == 0.0) any_zero = true;
        else log_sum += 0.25 * log(result.precision[n]);
    }
    long c = result.candidate_length, r = result.reference_length;
    result.brevity_penalty = c == 0 ? 0.0 : c > r ? 1.0 : exp(1.0 - (double)r / (double)c);
    result.bleu = any_zero ? 0.0 : result.brevity_penalty * exp(log_sum);
    return result;
}
