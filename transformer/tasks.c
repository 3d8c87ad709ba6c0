/* transformer/tasks.c: the data the transformer learns from, all generated
 * or read from a local file, and the batches cut from it.
 *
 * Legend: N examples, W width (tokens of the longest example), S tokens in a
 * stream, B batch, T time, V vocabulary.
 *
 * Three kinds of data:
 *   - examples (copy, reverse, sort, add, pairs): "prompt SEP answer END",
 *     one per row, e.g. "cab>abc." or "123+45=168.", or for the lines
 *     "source<TAB>target" of a file, "source<sep>target<end>".  The model
 *     reads the whole row but is scored only on the answer.
 *   - streams (toy, text, words): one long sequence of tokens; a batch is B
 *     windows of T+1 tokens at random offsets, and the model predicts every
 *     next token (GPT) or the masked ones (BERT).  The last tenth of the
 *     stream is kept for validation.
 *   - classification (sentiment, encoder only): a sentence and its label.
 * Everything random comes from the Rng the caller passes, so a seed gives
 * the same data and the same batches on every machine.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentiment.h"
#include "transformer.h"

static const char *const TASK_NAMES[TRANSFORMER_TASK_COUNT] = {
    "copy", "reverse", "sort", "add", "toy", "text", "words", "sentiment", "pairs"};

bool transformer_task_parse(const char *name, TransformerTask *task) {
    for (int i = 0; i < TRANSFORMER_TASK_COUNT; i++)
        if (strcmp(name, TASK_NAMES[i]) == 0) {
            *task = (TransformerTask)i;
            return true;
        }
    return false;
}

const char *transformer_task_name(TransformerTask task) { return TASK_NAMES[task]; }

/* Special tokens.  "<mask>" is one token even in a character vocabulary.
 * Pairs may hold any character, "_", ">" and "." included, so their pad,
 * separator and end are tokens no single character can spell. */
static const char PAD[] = "_", MASK[] = "<mask>";
static const char PAIRS_PAD[] = "<pad>", SEP[] = "<sep>", END[] = "<end>", UNK[] = "<unk>";
/* The multi-character tokens that transformer_encode_vocab reads as one. */
static const char *const SPECIALS[] = {MASK, PAIRS_PAD, SEP, END, UNK};

const char *transformer_task_separator(TransformerTask task) {
    switch (task) {
    case TRANSFORMER_TASK_COPY:
    case TRANSFORMER_TASK_REVERSE:
    case TRANSFORMER_TASK_SORT: return ">";
    case TRANSFORMER_TASK_ADD: return "=";
    case TRANSFORMER_TASK_PAIRS: return SEP;
    default: return NULL;
    }
}

/* The symbols of copy/reverse/sort: ten letters, so sorting has repeats. */
static const char SYMBOLS[] = "abcdefghij";

/* ==== Examples: copy, reverse, sort, add ======================================= */

static int compare_chars(const void *a, const void *b) {
    return *(const char *)a - *(const char *)b;
}

/* One example as text into `text` (room for 4 * max_length + 8).  Returns
 * the offset of the first answer character. */
static int example_text(TransformerTask task, int max_length, Rng *rng, char *text) {
    if (task == TRANSFORMER_TASK_ADD) {
        long operands[2];
        for (int k = 0; k < 2; k++) {
            int digits = 1 + (int)rng_below(rng, (uint32_t)max_length);
            long low = 1, high = 10;
            for (int d = 1; d < digits; d++) low *= 10, high *= 10;
            if (digits == 1) low = 0;
            operands[k] = low + (long)rng_below(rng, (uint32_t)(high - low));
        }
        int prompt = sprintf(text, "%ld+%ld=", operands[0], operands[1]);
        sprintf(text + prompt, "%ld.", operands[0] + operands[1]);
        return prompt;
    }
    int n = 1 + (int)rng_below(rng, (uint32_t)max_length);
    char *answer = text + n + 1;
    for (int i = 0; i < n; i++) text[i] = SYMBOLS[rng_below(rng, sizeof SYMBOLS - 1)];
    text[n] = '>';
    for (int i = 0; i < n; i++)
        answer[i] = task == TRANSFORMER_TASK_REVERSE ? text[n - 1 - i] : text[i];
    if (task == TRANSFORMER_TASK_SORT) qsort(answer, (size_t)n, 1, compare_chars);
    answer[n] = '.';
    answer[n + 1] = '\0';
    return n + 1;
}

/* The fixed vocabulary of a task: pad first, then its symbols. */
static void example_vocab(TransformerTask task, Vocab *vocab) {
    vocab_add(vocab, PAD);
    const char *symbols = task == TRANSFORMER_TASK_ADD ? "0123456789+=." : "abcdefghij>.";
    for (const char *s = symbols; *s; s++) vocab_add(vocab, (char[]){*s, '\0'});
}

static bool load_examples(TransformerData *d, const TransformerDataOptions *o, Rng *rng,
                          Error *err) {
    if (o->max_length < 1 || o->max_length > (o->task == TRANSFORMER_TASK_ADD ? 9 : 64))
        return error_set(err, "--task-length %d outside [1, %d] for task %s", o->max_length,
                         o->task == TRANSFORMER_TASK_ADD ? 9 : 64, TASK_NAMES[o->task]);
    d->kind = TRANSFORMER_EXAMPLES;
    example_vocab(o->task, &d->vocab);
    d->pad_id = vocab_find(&d->vocab, PAD);
    d->end_id = vocab_find(&d->vocab, ".");
    /* longest: copy 2L+2 characters; add L + 1 + L + 1 + (L+1) + 1 */
    d->width = o->task == TRANSFORMER_TASK_ADD ? 3 * o->max_length + 4 : 2 * o->max_length + 2;
    d->count = o->examples;
    d->tokens = xmalloc((size_t)d->count * d->width * sizeof(int));
    d->lengths = xmalloc((size_t)d->count * sizeof(int));
    d->answer_start = xmalloc((size_t)d->count * sizeof(int));
    char text[4 * 64 + 8];
    for (int n = 0; n < d->count; n++) {
        d->answer_start[n] = example_text(o->task, o->max_length, rng, text);
        int *row = d->tokens + (size_t)n * d->width;
        int length = vocab_encode_chars(&d->vocab, text, strlen(text), row, d->width, err);
        if (length < 0) fatal("task %s made an example outside its vocabulary: %s", TASK_NAMES[o->task], text);
        d->lengths[n] = length;
        for (int t = length; t < d->width; t++) row[t] = d->pad_id;
    }
    return true;
}

/* ==== Pairs: source<TAB>target lines of a file ======================================== */

/* Reads one --data or --val-data file; the lines common/data.h skips are
 * counted in a warning (printed even with --quiet, as seq2seq does). */
static bool read_pairs(const char *path, PairList *list, Error *err) {
    if (!tsv_read_pairs(path, TRANSFORMER_PAIRS_MAX_LINE_BYTES, false, list, err)) return false;
    pair_list_warn_skipped(list, path, TRANSFORMER_PAIRS_MAX_LINE_BYTES);
    return true;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The specials, then every character of the training pairs sorted by code
 * point (UTF-8 byte order is code point order): the ids depend on the set
 * of characters only, not on the order of the lines. */
static void pairs_vocab(TransformerData *d, const PairList *list, const int *rows, int count) {
    Vocab seen;
    vocab_init(&seen);
    Error err; /* unused: the reader has checked the UTF-8 */
    for (int i = 0; i < count; i++) {
        const TextPair *p = &list->pairs[rows[i]];
        vocab_add_chars(&seen, p->source, strlen(p->source), &err);
        vocab_add_chars(&seen, p->target, strlen(p->target), &err);
    }
    char **sorted = xmalloc((size_t)seen.size * sizeof(char *)); /* (characters) */
    memcpy(sorted, seen.tokens, (size_t)seen.size * sizeof(char *));
    qsort(sorted, (size_t)seen.size, sizeof(char *), compare_strings);
    d->pad_id = vocab_add(&d->vocab, PAIRS_PAD);
    vocab_add(&d->vocab, SEP);
    d->end_id = vocab_add(&d->vocab, END);
    vocab_add(&d->vocab, UNK); /* found by name when encoding: transformer_encode_literal */
    for (int i = 0; i < seen.size; i++) vocab_add(&d->vocab, sorted[i]);
    free(sorted);
    vocab_free(&seen);
}

/* Appends the pairs rows[0..count) of list (rows NULL: all, in order) as
 * examples "source <sep> target <end>", rows of tokens (N, context); their
 * example numbers go to *indices (malloc'd), and *kept counts them.
 * Returns how many were longer than the context and skipped. */
static int add_pairs(TransformerData *d, const PairList *list, const int *rows, int count,
                     int context, int **indices, int *kept) {
    int sep = vocab_find(&d->vocab, SEP), skipped = 0;
    int *ids = xmalloc((size_t)(2 * TRANSFORMER_PAIRS_MAX_LINE_BYTES + 2) * sizeof(int)); /* (W) */
    *indices = xmalloc((size_t)(count > 0 ? count : 1) * sizeof(int));
    *kept = 0;
    Error err;
    for (int i = 0; i < count; i++) {
        const TextPair *p = &list->pairs[rows ? rows[i] : i];
        /* a line holds at most MAX_LINE_BYTES characters, so these fit */
        int source = transformer_encode_literal(&d->vocab, p->source, strlen(p->source), ids,
                                                TRANSFORMER_PAIRS_MAX_LINE_BYTES, &err);
        int target = transformer_encode_literal(&d->vocab, p->target, strlen(p->target),
                                                ids + source + 1, TRANSFORMER_PAIRS_MAX_LINE_BYTES, &err);
        if (source < 0 || target < 0) fatal("add_pairs: line %d: %s", p->line, err.message);
        int length = source + target + 2;
        if (length > context) {
            skipped++;
            continue;
        }
        ids[source] = sep;
        ids[length - 1] = d->end_id;
        int n = d->count++;
        memcpy(d->tokens + (size_t)n * context, ids, (size_t)length * sizeof(int));
        d->lengths[n] = length;
        d->answer_start[n] = source + 1;
        d->width = length > d->width ? length : d->width;
        (*indices)[(*kept)++] = n;
    }
    free(ids);
    return skipped;
}

/* --data FILE (and --val-data FILE) of source<TAB>target lines.  Without
 * --val-data, --val-fraction of the lines, drawn with rng, validate.  The
 * vocabulary comes from the training pairs alone: a character seen only in
 * validation is <unk>, as it would be in new text.  A pair longer than the
 * context (source + sep + target + end) is skipped, with a count. */
static bool load_pairs(TransformerData *d, const TransformerDataOptions *o, Rng *rng,
                       Error *err) {
    if (o->data_path == NULL)
        return error_set(err, "--task pairs needs --data FILE of source<TAB>target lines");
    PairList list, val_list = {0};
    if (!read_pairs(o->data_path, &list, err)) return false;
    if (o->val_data_path && !read_pairs(o->val_data_path, &val_list, err)) {
        pair_list_free(&list);
        return false;
    }
    /* with --val-data, every line of --data trains (a fraction of 0) */
    int *train_rows, *val_rows, train_count, val_count;
    split_indices(list.count, o->val_data_path ? 0.0f : o->val_fraction, rng, &train_rows,
                  &train_count, &val_rows, &val_count);
    d->kind = TRANSFORMER_EXAMPLES;
    pairs_vocab(d, &list, train_rows, train_count);
    int rows = train_count + (o->val_data_path ? val_list.count : val_count);
    d->tokens = xmalloc((size_t)rows * o->context * sizeof(int));
    d->lengths = xmalloc((size_t)rows * sizeof(int));
    d->answer_start = xmalloc((size_t)rows * sizeof(int));
    int long_train = add_pairs(d, &list, train_rows, train_count, o->context, &d->train,
                               &d->train_count);
    int long_val = o->val_data_path
                       ? add_pairs(d, &val_list, NULL, val_list.count, o->context, &d->validation,
                                   &d->validation_count)
                       : add_pairs(d, &list, val_rows, val_count, o->context, &d->validation,
                                   &d->validation_count);
    if (long_train + long_val > 0)
        fprintf(stderr, "%s: skipped %d training and %d validation pairs longer than --context "
                "%d tokens (source + <sep> + target + <end>)\n", o->data_path, long_train,
                long_val, o->context);
    /* rows of `context` tokens -> rows of `width`: each row moves to an
     * earlier place, so copying them in order never overwrites one not yet
     * moved */
    for (int n = 0; n < d->count; n++) {
        int *row = d->tokens + (size_t)n * d->width;
        memmove(row, d->tokens + (size_t)n * o->context, (size_t)d->lengths[n] * sizeof(int));
        for (int t = d->lengths[n]; t < d->width; t++) row[t] = d->pad_id;
    }
    d->tokens = xrealloc(d->tokens, (size_t)d->count * d->width * sizeof(int)); /* (N, W) */
    bool ok = d->train_count > 0 ||
              error_set(err, "%s: no pair fits --context %d (source + <sep> + target + <end>, "
                        "in characters); raise --context", o->data_path, o->context);
    free(train_rows), free(val_rows);
    pair_list_free(&list);
    pair_list_free(&val_list);
    return ok;
}

/* ==== The toy farm language ========================================================== */

/* Words of one category are interchangeable in the grammar below, so they
 * occur in the same contexts; that is all an embedding can learn from, and
 * it is enough for words of one category to end up near each other. */
typedef struct {
    const char *category;
    const char *words[10];
} WordClass;

enum { ANIMAL, FOOD, PERSON, PLACE, ADJECTIVE, REST_VERB, EAT_VERB, CARE_VERB, GROW_VERB,
       FUNCTION, CLASS_COUNT };
static const WordClass TOY_WORDS[CLASS_COUNT] = {
    [ANIMAL] = {"animal", {"cow", "pig", "sheep", "goat", "horse", "duck", "hen", "dog"}},
    [FOOD] = {"plant", {"grass", "hay", "corn", "wheat", "oats", "clover", "apples", "carrots"}},
    [PERSON] = {"person", {"farmer", "girl", "boy", "vet"}},
    [PLACE] = {"place", {"barn", "field", "meadow", "pond", "yard", "stable"}},
    [ADJECTIVE] = {"adjective", {"big", "small", "brown", "white", "old", "young"}},
    [REST_VERB] = {"action (animal)", {"sleeps", "runs", "rests", "walks"}},
    [EAT_VERB] = {"action (eat)", {"eats", "chews", "likes"}},
    [CARE_VERB] = {"action (care)", {"feeds", "washes", "brushes", "calls"}},
    [GROW_VERB] = {"action (grow)", {"plants", "grows", "picks", "waters"}},
    [FUNCTION] = {"function word", {"the", "in", "to", "."}},
};

static const char *pick(int word_class, Rng *rng) {
    int n = 0;
    while (n < 10 && TOY_WORDS[word_class].words[n]) n++;
    return TOY_WORDS[word_class].words[rng_below(rng, (uint32_t)n)];
}

/* One sentence, from one of five templates, as words into out. */
static int toy_sentence(Rng *rng, const char **out) {
    int n = 0;
    out[n++] = "the";
    switch (rng_below(rng, 5)) {
    case 0: /* the [adj] ANIMAL EATS the FOOD . */
        if (rng_below(rng, 2)) out[n++] = pick(ADJECTIVE, rng);
        out[n++] = pick(ANIMAL, rng), out[n++] = pick(EAT_VERB, rng);
        out[n++] = "the", out[n++] = pick(FOOD, rng);
        break;
    case 1: /* the PERSON CARES-FOR the [adj] ANIMAL . */
        out[n++] = pick(PERSON, rng), out[n++] = pick(CARE_VERB, rng), out[n++] = "the";
        if (rng_below(rng, 2)) out[n++] = pick(ADJECTIVE, rng);
        out[n++] = pick(ANIMAL, rng);
        break;
    case 2: /* the [adj] ANIMAL RESTS in the PLACE . */
        if (rng_below(rng, 2)) out[n++] = pick(ADJECTIVE, rng);
        out[n++] = pick(ANIMAL, rng), out[n++] = pick(REST_VERB, rng);
        out[n++] = "in", out[n++] = "the", out[n++] = pick(PLACE, rng);
        break;
    case 3: /* the PERSON GROWS FOOD in the PLACE . */
        out[n++] = pick(PERSON, rng), out[n++] = pick(GROW_VERB, rng), out[n++] = pick(FOOD, rng);
        out[n++] = "in", out[n++] = "the", out[n++] = pick(PLACE, rng);
        break;
    default: /* the PERSON walks to the PLACE . */
        out[n++] = pick(PERSON, rng), out[n++] = "walks", out[n++] = "to", out[n++] = "the";
        out[n++] = pick(PLACE, rng);
        break;
    }
    out[n++] = ".";
    return n;
}

const char *transformer_toy_category(const char *word) {
    if (strcmp(word, "walks") == 0) return TOY_WORDS[REST_VERB].category;
    for (int c = 0; c < CLASS_COUNT; c++)
        for (int i = 0; i < 10 && TOY_WORDS[c].words[i]; i++)
            if (strcmp(TOY_WORDS[c].words[i], word) == 0) return TOY_WORDS[c].category;
    return NULL;
}

static void stream_reserve(TransformerData *d, long *capacity, long needed) {
    if (needed <= *capacity) return;
    *capacity = needed > 2 * *capacity ? needed : 2 * *capacity;
    d->stream = xrealloc(d->stream, (size_t)*capacity * sizeof(int));
}

static bool load_toy(TransformerData *d, const TransformerDataOptions *o, Rng *rng) {
    d->kind = TRANSFORMER_STREAM;
    d->word_level = true;
    /* every word of the grammar, by category, so ids do not depend on luck */
    for (int c = 0; c < CLASS_COUNT; c++)
        for (int i = 0; i < 10 && TOY_WORDS[c].words[i]; i++) vocab_add(&d->vocab, TOY_WORDS[c].words[i]);
    d->end_id = vocab_find(&d->vocab, ".");
    long capacity = 0;
    const char *words[16];
    for (int s = 0; s < o->examples; s++) {
        int n = toy_sentence(rng, words);
        stream_reserve(d, &capacity, d->stream_length + n);
        for (int i = 0; i < n; i++) d->stream[d->stream_length++] = vocab_find(&d->vocab, words[i]);
    }
    return true;
}

/* ==== Text files and word lists ========================================================== */

/* Not empty, no NUL byte, valid UTF-8. */
static bool check_text(const char *path, const char *text, size_t size, Error *err) {
    if (size == 0) return error_set(err, "%s: the file is empty; expected text", path);
    if (text_is_binary(text, size))
        return error_set(err, "%s: looks like a binary file (it holds NUL bytes); expected text",
                         path);
    long bad = utf8_first_invalid(text, size);
    if (bad >= 0)
        return error_set(err, "%s: invalid UTF-8 at byte %ld; expected UTF-8 text", path, bad);
    return true;
}

static bool read_text(const char *path, char **text, size_t *size, Error *err) {
    if (!file_read_all(path, DATA_MAX_FILE_BYTES, text, size, err)) return false;
    if (check_text(path, *text, *size, err)) return true;
    free(*text);
    return false;
}

bool transformer_text_parse(TransformerData *d, const char *path, const char *text, size_t size,
                            Error *err) {
    if (!check_text(path, text, size, err)) return false;
    d->kind = TRANSFORMER_STREAM;
    vocab_add_chars(&d->vocab, text, size, err); /* valid UTF-8 was checked above */
    d->stream = xmalloc((size + 1) * sizeof(int));
    d->stream_length = vocab_encode_chars(&d->vocab, text, size, d->stream, (int)size, err);
    return d->stream_length > 0;
}

static bool load_text(TransformerData *d, const TransformerDataOptions *o, Error *err) {
    if (o->data_path == NULL) return error_set(err, "--task text needs --data FILE");
    char *text;
    size_t size;
    if (!file_read_all(o->data_path, DATA_MAX_FILE_BYTES, &text, &size, err)) return false;
    bool ok = transformer_text_parse(d, o->data_path, text, size, err);
    free(text);
    return ok;
}

static bool is_plain_word(const char *line, size_t length) {
    if (length < 2) return false;
    for (size_t i = 0; i < length; i++)
        if (line[i] < 'a' || line[i] > 'z') return false;
    return true;
}

/* One lower-case word per line (others are skipped), shuffled, then joined
 * with "\n": the model learns what words look like, and sampling after a
 * "\n" invents new ones. */
static bool load_words(TransformerData *d, const TransformerDataOptions *o, Rng *rng,
                       Error *err) {
    const char *path = o->data_path ? o->data_path : "/usr/share/dict/words";
    char *text;
    size_t size;
    if (!read_text(path, &text, &size, err)) {
        if (o->data_path != NULL) return false;
        char reason[sizeof err->message];
        snprintf(reason, sizeof reason, "%s", err->message);
        return error_set(err, "--task words: %s; install a word list (apt-get install "
                         "wamerican) or pass --data FILE with one word per line", reason);
    }
    int count = 0, capacity = 1024;
    char **words = xmalloc((size_t)capacity * sizeof(char *));
    for (char *line = text; line < text + size;) {
        char *end = memchr(line, '\n', (size_t)(text + size - line));
        if (end == NULL) end = text + size;
        size_t length = (size_t)(end - line);
        if (length > 0 && line[length - 1] == '\r') length--;
        if (is_plain_word(line, length) && length < 32) {
            if (count == capacity) words = xrealloc(words, (size_t)(capacity *= 2) * sizeof(char *));
            line[length] = '\0';
            words[count++] = line;
        }
        line = end + 1;
    }
    if (count < 100) {
        free(words), free(text);
        return error_set(err, "%s: only %d lines are a single lower-case word (a-z); expected "
                         "at least 100", path, count);
    }
    /* shuffle: the file is sorted, and validation takes the tail */
    for (int i = count - 1; i > 0; i--) {
        int j = (int)rng_below(rng, (uint32_t)i + 1);
        char *swap = words[i];
        words[i] = words[j], words[j] = swap;
    }
    d->kind = TRANSFORMER_STREAM;
    vocab_add(&d->vocab, "\n");
    for (char c = 'a'; c <= 'z'; c++) vocab_add(&d->vocab, (char[]){c, '\0'});
    d->end_id = vocab_find(&d->vocab, "\n");
    long capacity_tokens = 0;
    for (int w = 0; w < count; w++) {
        size_t length = strlen(words[w]);
        stream_reserve(d, &capacity_tokens, d->stream_length + (long)length + 1);
        for (size_t i = 0; i < length; i++)
            d->stream[d->stream_length++] = words[w][i] - 'a' + 1;
        d->stream[d->stream_length++] = d->end_id;
    }
    free(words), free(text);
    return true;
}

/* ==== Sentiment sentences (common/sentiment.h) ============================================== */

/* Appends the words of `sentence` as row n of the examples. */
static void add_sentence(TransformerData *d, int n, const SentimentExample *e) {
    int *row = d->tokens + (size_t)n * d->width, length = 0;
    char word[64];
    for (const char *p = e->sentence; *p;) {
        size_t used = strcspn(p, " ");
        snprintf(word, sizeof word, "%.*s", (int)used, p);
        if (length < d->width) row[length++] = vocab_add(&d->vocab, word);
        p += used;
        while (*p == ' ') p++;
    }
    for (int t = length; t < d->width; t++) row[t] = d->pad_id;
    d->lengths[n] = length;
    d->labels[n] = e->label;
}

static int words_in(const char *sentence) {
    int words = 1;
    for (const char *p = sentence; *p; p++) words += *p == ' ';
    return words;
}

/* The generated treebank's sentences, flattened to words: training set,
 * then the dev set (validation), then the negation probe.  Labels are the
 * 5-point sentiment of the whole sentence. */
static bool load_sentiment(TransformerData *d, const TransformerDataOptions *o, bool encoder,
                           Error *err) {
    if (!encoder)
        return error_set(err, "--task sentiment classifies whole sentences: use --mode bert");
    SentimentTreebank bank;
    int dev = o->examples / 10 > 50 ? o->examples / 10 : 50;
    sentiment_generate(&bank, o->examples, dev, 0, 200, o->seed);
    const SentimentSet *sets[3] = {&bank.train, &bank.dev, &bank.probe};
    d->kind = TRANSFORMER_CLASSIFY;
    d->word_level = true;
    d->classes = SENTIMENT_CLASSES;
    d->pad_id = vocab_add(&d->vocab, PAD);
    d->count = bank.train.count + bank.dev.count + bank.probe.count;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < sets[k]->count; i++)
            d->width = words_in(sets[k]->examples[i].sentence) > d->width
                           ? words_in(sets[k]->examples[i].sentence) : d->width;
    d->tokens = xmalloc((size_t)d->count * d->width * sizeof(int));
    d->lengths = xmalloc((size_t)d->count * sizeof(int));
    d->labels = xmalloc((size_t)d->count * sizeof(int));
    d->negated = xmalloc((size_t)d->count * sizeof(bool));
    int n = 0;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < sets[k]->count; i++, n++) {
            add_sentence(d, n, &sets[k]->examples[i]);
            d->negated[n] = sets[k]->examples[i].negated;
        }
    d->train_count = bank.train.count;
    d->validation_count = bank.dev.count;
    d->probe_count = bank.probe.count;
    d->train = xmalloc((size_t)d->train_count * sizeof(int));
    d->validation = xmalloc((size_t)d->validation_count * sizeof(int));
    d->probe = xmalloc((size_t)d->probe_count * sizeof(int));
    for (int i = 0; i < d->train_count; i++) d->train[i] = i;
    for (int i = 0; i < d->validation_count; i++) d->validation[i] = d->train_count + i;
    for (int i = 0; i < d->probe_count; i++) d->probe[i] = d->train_count + d->validation_count + i;
    sentiment_free(&bank);
    return true;
}

/* ==== Loading ============================================================================ */

bool transformer_data_load(TransformerData *d, const TransformerDataOptions *o, bool encoder,
                           Error *err) {
    memset(d, 0, sizeof *d);
    d->task = o->task;
    d->pad_id = d->mask_id = d->end_id = -1;
    vocab_init(&d->vocab);
    if (o->examples < 10) return error_set(err, "--examples %d: need at least 10", o->examples);
    Rng rng;
    rng_seed(&rng, o->seed, 1); /* stream 1: data */
    bool ok;
    switch (o->task) {
    case TRANSFORMER_TASK_TOY: ok = load_toy(d, o, &rng); break;
    case TRANSFORMER_TASK_TEXT: ok = load_text(d, o, err); break;
    case TRANSFORMER_TASK_WORDS: ok = load_words(d, o, &rng, err); break;
    case TRANSFORMER_TASK_SENTIMENT: ok = load_sentiment(d, o, encoder, err); break;
    case TRANSFORMER_TASK_PAIRS: ok = load_pairs(d, o, &rng, err); break;
    default: ok = load_examples(d, o, &rng, err); break;
    }
    if (!ok) {
        transformer_data_free(d);
        return false;
    }
    if (encoder && d->kind == TRANSFORMER_EXAMPLES) {
        transformer_data_free(d);
        return error_set(err, "--mode bert trains on streams (toy, text, words: masked tokens) "
                         "or sentiment (classification), not on task %s", TASK_NAMES[o->task]);
    }
    if (encoder && d->kind == TRANSFORMER_STREAM) d->mask_id = vocab_add(&d->vocab, MASK);
    if (d->kind == TRANSFORMER_STREAM) {
        d->train_end = d->stream_length - d->stream_length / 10;
    } else if (d->kind == TRANSFORMER_EXAMPLES && d->train == NULL) { /* pairs split already */
        split_indices(d->count, 0.1f, &rng, &d->train, &d->train_count, &d->validation,
                      &d->validation_count);
    }
    return true;
}

void transformer_data_free(TransformerData *d) {
    vocab_free(&d->vocab);
    free(d->stream), free(d->tokens), free(d->lengths), free(d->answer_start), free(d->labels);
    free(d->train), free(d->validation), free(d->probe), free(d->negated);
    memset(d, 0, sizeof *d);
}

int transformer_data_time(const TransformerData *d, int context) {
    switch (d->kind) {
    case TRANSFORMER_EXAMPLES: return d->width - 1; /* the last token is only a target */
    case TRANSFORMER_CLASSIFY: return d->width;
    default: return context;
    }
}

/* ==== Batches =================================================================================== */

void transformer_batch_alloc(TransformerBatch *batch, int B, int T) {
    batch->batch = B;
    batch->time = T;
    batch->ids = xcalloc((size_t)B * T, sizeof(int));
    batch->targets = xcalloc((size_t)B * T, sizeof(int));
    batch->lengths = xcalloc((size_t)B, sizeof(int));
    batch->labels = xcalloc((size_t)B, sizeof(int));
}

void transformer_batch_free(TransformerBatch *batch) {
    free(batch->ids), free(batch->targets), free(batch->lengths), free(batch->labels);
    memset(batch, 0, sizeof *batch);
}

/* Row b of the batch from example n: inputs are tokens 0..T-1, and the
 * target at t is token t+1 when that token belongs to the answer. */
static void fill_example_row(const TransformerData *d, int n, TransformerBatch *batch, int b) {
    int T = batch->time;
    const int *row = d->tokens + (size_t)n * d->width;
    int *ids = batch->ids + (size_t)b * T, *targets = batch->targets + (size_t)b * T;
    for (int t = 0; t < T; t++) {
        ids[t] = row[t];
        bool scored = t + 1 >= d->answer_start[n] && t + 1 < d->lengths[n];
        targets[t] = scored ? row[t + 1] : -1;
    }
    batch->lengths[b] = d->lengths[n];
}

/* BERT's masked-token objective on one window: each position is chosen with
 * probability 15%; a chosen token becomes <mask> 80% of the time, a random
 * token 10%, itself 10%; the target is the original token at chosen
 * positions only. */
static void mask_row(const TransformerData *d, const int *window, int T, Rng *rng, int *ids,
                     int *targets) {
    int V = d->vocab.size;
    for (int t = 0; t < T; t++) {
        ids[t] = window[t];
        targets[t] = -1;
        if (rng_uniform(rng) >= 0.15f) continue;
        targets[t] = window[t];
        float r = rng_uniform(rng);
        if (r < 0.8f) ids[t] = d->mask_id;
        else if (r < 0.9f) ids[t] = (int)rng_below(rng, (uint32_t)(V - 1)); /* not <mask> (last) */
    }
}

static void fill_stream_row(const TransformerData *d, long offset, bool encoder, Rng *rng,
                            TransformerBatch *batch, int b) {
    int T = batch->time;
    int *ids = batch->ids + (size_t)b * T, *targets = batch->targets + (size_t)b * T;
    if (encoder) {
        mask_row(d, d->stream + offset, T, rng, ids, targets);
    } else {
        memcpy(ids, d->stream + offset, (size_t)T * sizeof(int));
        memcpy(targets, d->stream + offset + 1, (size_t)T * sizeof(int));
    }
    batch->lengths[b] = T;
}

static void fill_class_row(const TransformerData *d, int n, TransformerBatch *batch, int b) {
    int T = batch->time;
    memcpy(batch->ids + (size_t)b * T, d->tokens + (size_t)n * d->width, (size_t)T * sizeof(int));
    for (int t = 0; t < T; t++) batch->targets[(size_t)b * T + t] = -1;
    batch->lengths[b] = d->lengths[n];
    batch->labels[b] = d->labels[n];
}

void transformer_batch_sample(const TransformerData *d, bool encoder, Rng *rng,
                              TransformerBatch *batch) {
    for (int b = 0; b < batch->batch; b++) {
        if (d->kind == TRANSFORMER_STREAM) {
            /* a window of T+1 tokens inside the training part */
            long last_start = d->train_end - batch->time - 1;
            long offset = (long)rng_below(rng, (uint32_t)(last_start + 1));
            fill_stream_row(d, offset, encoder, rng, batch, b);
        } else {
            int n = d->train[rng_below(rng, (uint32_t)d->train_count)];
            if (d->kind == TRANSFORMER_EXAMPLES) fill_example_row(d, n, batch, b);
            else fill_class_row(d, n, batch, b);
        }
    }
}

int transformer_batch_validation(const TransformerData *d, bool encoder, int index, int limit,
                                 Rng *rng, TransformerBatch *batch) {
    int B = batch->batch, T = batch->time, filled = 0;
    for (int b = 0; b < B; b++) {
        long row = (long)index * B + b;
        bool inside;
        if (d->kind == TRANSFORMER_STREAM) {
            /* consecutive windows of the validation part, none overlapping */
            long offset = d->train_end + row * T;
            inside = row < limit && offset + T < d->stream_length;
            if (inside) fill_stream_row(d, offset, encoder, rng, batch, b);
        } else {
            inside = row < limit && row < d->validation_count;
            if (inside && d->kind == TRANSFORMER_EXAMPLES)
                fill_example_row(d, d->validation[row], batch, b);
            else if (inside)
                fill_class_row(d, d->validation[row], batch, b);
        }
        if (!inside) { /* padding rows: no targets, no label */
            for (int t = 0; t < T; t++) {
                batch->ids[(size_t)b * T + t] = 0;
                batch->targets[(size_t)b * T + t] = -1;
            }
            batch->lengths[b] = T;
            batch->labels[b] = -1;
        } else {
            filled++;
        }
    }
    return filled;
}

/* ==== Text <-> ids ================================================================================ */

int transformer_encode_literal(const Vocab *vocab, const char *text, size_t length, int *ids,
                               int max_ids, Error *err) {
    /* vocab_find gives -1 without <unk>: then an unknown character is an error */
    return vocab_encode_chars_or(vocab, text, length, vocab_find(vocab, UNK), ids, max_ids, err);
}

/* The first special token of the vocabulary written in text, or NULL; *id
 * and *length receive its id and its length in bytes. */
static const char *next_special(const Vocab *vocab, const char *text, int *id, size_t *length) {
    const char *first = NULL;
    for (size_t k = 0; k < sizeof SPECIALS / sizeof SPECIALS[0]; k++) {
        int special = vocab_find(vocab, SPECIALS[k]);
        const char *at = special >= 0 ? strstr(text, SPECIALS[k]) : NULL;
        if (at != NULL && (first == NULL || at < first)) {
            first = at;
            *id = special;
            *length = strlen(SPECIALS[k]);
        }
    }
    return first;
}

int transformer_encode_vocab(const Vocab *vocab, bool word_level, const char *text, int *ids,
                             int max_ids, Error *err) {
    int count = 0;
    if (word_level) {
        char word[256];
        for (const char *p = text; *p;) {
            while (*p && isspace((unsigned char)*p)) p++;
            size_t length = 0;
            while (p[length] && !isspace((unsigned char)p[length])) length++;
            if (length == 0) break;
            if (length >= sizeof word) return error_set(err, "a word of %zu bytes is too long", length), -1;
            memcpy(word, p, length);
            word[length] = '\0';
            int id = vocab_find(vocab, word);
            if (id < 0) return error_set(err, "the word \"%s\" is not in the vocabulary", word), -1;
            if (count == max_ids) return error_set(err, "more than %d tokens", max_ids), -1;
            ids[count++] = id;
            p += length;
        }
        return count;
    }
    /* characters, with "<mask>", "<sep>"... as one token when the
     * vocabulary has them */
    for (const char *p = text; *p;) {
        int special = -1;
        size_t special_length = 0;
        const char *next = next_special(vocab, p, &special, &special_length);
        size_t length = next ? (size_t)(next - p) : strlen(p);
        int used = transformer_encode_literal(vocab, p, length, ids + count, max_ids - count, err);
        if (used < 0) return -1;
        count += used;
        if (next == NULL) break;
        if (count == max_ids) return error_set(err, "more than %d tokens", max_ids), -1;
        ids[count++] = special;
        p = next + special_length;
    }
    return count;
}

int transformer_encode(const TransformerData *d, const char *text, int *ids, int max_ids,
                       Error *err) {
    return transformer_encode_vocab(&d->vocab, d->word_level, text, ids, max_ids, err);
}

char *transformer_decode(const Vocab *vocab, bool word_level, const int *ids, int count, char *out,
                         size_t size) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < count && used + 1 < size; i++) {
        const char *token = vocab->tokens[ids[i]];
        int wrote = snprintf(out + used, size - used, "%s%s", word_level && i ? " " : "", token);
        if (wrote < 0) break;
        used += (size_t)wrote;
    }
    return out;
}
