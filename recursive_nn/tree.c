/* recursive_nn/tree.c: binary trees, and the Penn Treebank / Stanford
 * Sentiment Treebank (SST) format they are read from and written to.
 *
 * Legend: P nodes of one tree, K classes.
 *
 * THE FORMAT.  A tree is an s-expression with a label on every node:
 *     (3 (2 It) (4 (2 is) (4 good)))
 * A bracket holds an optional label, then words and/or bracketed subtrees.
 *   - Labels: in a labelled file (TREE_LABELS_REQUIRED, used for training
 *     and evaluation data) every '(' must be followed by an integer label in
 *     [0, K).  In TREE_LABELS_OPTIONAL mode (predict's input) a leading
 *     integer in [0, K) is a label and anything else is a word, so
 *     ((the movie) (is good)) reads as an unlabelled tree.
 *   - Words: "(2 It)" is a leaf.  Words may also stand bare inside a bracket,
 *     "(3 very good)", which makes unlabelled leaves.  The Penn Treebank's
 *     escapes -LRB- and -RRB- are read as "(" and ")" and written back.
 *   - Unary brackets, "(2 (3 good))" or "((good))", collapse into their
 *     child, which keeps its own label if it has one.
 *   - Penn Treebank category labels (S, NP, VBZ) are not labels here: a
 *     first token that is not an integer is read as a word.  Convert such
 *     trees to SST style (numeric labels, or none) before using them.
 *   - Binarization (a documented choice): a bracket with more than two
 *     children, (a b c d), becomes right-branching, (a (b (c d))), and the
 *     nodes this creates are unlabelled (label -1: no loss, no metric).
 *     Right-branching suits English phrases, whose heads tend to come first
 *     and whose modifiers follow, and it is the same default as for plain
 *     sentences (below).
 * Errors name the input, line and column (columns count characters):
 *     trees.txt:3:17: label 7 out of range 0..4
 *
 * NO RECURSION.  The reader keeps its own stack of open brackets on the
 * heap, and bracket nesting is limited to TREE_MAX_DEPTH, so a file of
 * 100000 '(' fails with a message instead of overflowing the C stack.  Nodes
 * are stored children first (root last), so every other pass over a tree
 * (heights, batching, drawing) is a loop; the writer keeps an explicit
 * stack too.
 *
 * PLAIN SENTENCES.  tree_from_sentence reads "the movie is not good" as a
 * right-branching tree, (the (movie (is (not good)))).  Caveat: this is
 * only a guess at the structure.  It matches the generated sentiment
 * treebank's single clauses exactly, but not its contrasts: "X but Y" is
 * generated as (X (but Y)), while right-branching nests "but Y" inside the
 * last word of X.  Real sentences need a parser (e.g. Stanford CoreNLP) to
 * give the tree a model was trained on.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "recursive_nn.h"

/* ---- Trees and treebanks --------------------------------------------------- */

void treebank_init(Treebank *bank) { memset(bank, 0, sizeof *bank); }

void tree_free(Tree *tree) {
    for (int i = 0; i < tree->count; i++) free(tree->nodes[i].text);
    free(tree->nodes);
    memset(tree, 0, sizeof *tree);
}

void treebank_free(Treebank *bank) {
    for (int i = 0; i < bank->count; i++) tree_free(&bank->trees[i]);
    free(bank->trees);
    treebank_init(bank);
}

void treebank_add(Treebank *bank, Tree *tree) {
    if (bank->count == bank->capacity) {
        bank->capacity = bank->capacity ? 2 * bank->capacity : 64;
        bank->trees = xrealloc(bank->trees, (size_t)bank->capacity * sizeof(Tree));
    }
    bank->trees[bank->count++] = *tree;
    memset(tree, 0, sizeof *tree);
}

int tree_heights(const Tree *tree, int *heights) {
    for (int i = 0; i < tree->count; i++) {
        const TreeNode *n = &tree->nodes[i];
        if (n->left < 0) {
            heights[i] = 0;
        } else {
            int hl = heights[n->left], hr = heights[n->right];
            heights[i] = 1 + (hl > hr ? hl : hr);
        }
    }
    return tree->count > 0 ? heights[tree->count - 1] : 0;
}

/* ---- Building a tree node by node ------------------------------------------- */

typedef struct {
    TreeNode *nodes; /* (P) */
    int count, capacity;
} NodeList;

static int node_add(NodeList *list, int left, int right, int label, char *text) {
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? 2 * list->capacity : 32;
        list->nodes = xrealloc(list->nodes, (size_t)list->capacity * sizeof(TreeNode));
    }
    list->nodes[list->count] = (TreeNode){.left = left, .right = right, .label = label,
                                          .word = -1, .text = text};
    return list->count++;
}

static void node_list_free(NodeList *list) {
    for (int i = 0; i < list->count; i++) free(list->nodes[i].text);
    free(list->nodes);
    memset(list, 0, sizeof *list);
}

/* A word as stored: -LRB-/-RRB- unescaped, optionally lowercased. */
static char *word_copy(const char *start, size_t length, bool lowercase) {
    if (length == 5 && strncmp(start, "-LRB-", 5) == 0) return xstrdup("(");
    if (length == 5 && strncmp(start, "-RRB-", 5) == 0) return xstrdup(")");
    char *word = xmalloc(length + 1);
    for (size_t i = 0; i < length; i++)
        word[i] = lowercase ? (char)tolower((unsigned char)start[i]) : start[i];
    word[length] = '\0';
    return word;
}

/* Right-branching: children c[0..k) -> (c0 (c1 (... c[k-1]))).  The new
 * nodes are unlabelled except the top one, which gets `label`. */
static int binarize(NodeList *list, const int *children, int k, int label) {
    int right = children[k - 1];
    for (int i = k - 2; i >= 0; i--) right = node_add(list, children[i], right, -1, NULL);
    list->nodes[right].label = label;
    return right;
}

/* ---- The reader: a tokenizer and a stack of open brackets -------------------- */

typedef struct {
    const char *text;
    size_t size, pos;
    int line, column; /* of text[pos], 1-based */
    const char *name;
} Cursor;

static void cursor_advance(Cursor *c) {
    unsigned char ch = (unsigned char)c->text[c->pos++];
    if (ch == '\n') {
        c->line++;
        c->column = 1;
    } else if ((ch & 0xC0) != 0x80) { /* not a UTF-8 continuation byte */
        c->column++;
    }
}

/* Line and column of byte `offset` (for errors found by whole-text checks). */
static void locate(const char *text, size_t offset, int *line, int *column) {
    Cursor c = {.text = text, .size = offset, .line = 1, .column = 1};
    while (c.pos < offset) cursor_advance(&c);
    *line = c.line;
    *column = c.column;
}

typedef struct {
    int line, column;  /* of the '('                                     */
    int label;         /* -1 until a label is read                        */
    int first_child;   /* index into the children stack                    */
    bool fresh;        /* nothing read yet after the '('                   */
} OpenBracket;

typedef struct {
    OpenBracket *open;  /* (depth) the stack of open brackets */
    int depth;
    int *children;      /* finished subtrees of the open brackets, in order */
    int child_count, child_capacity;
    NodeList nodes;     /* of the tree being read */
    int tree_line, tree_column;
} Reader;

static void push_child(Reader *r, int node) {
    if (r->child_count == r->child_capacity) {
        r->child_capacity = r->child_capacity ? 2 * r->child_capacity : 64;
        r->children = xrealloc(r->children, (size_t)r->child_capacity * sizeof(int));
    }
    r->children[r->child_count++] = node;
}

/* An integer label: 1 to 3 digits. */
static bool parse_label(const char *start, size_t length, int *label) {
    if (length == 0 || length > 3) return false;
    int value = 0;
    for (size_t i = 0; i < length; i++) {
        if (!isdigit((unsigned char)start[i])) return false;
        value = value * 10 + (start[i] - '0');
    }
    *label = value;
    return true;
}

static bool fail_at(Error *err, const Cursor *c, int line, int column, const char *what) {
    return error_set(err, "%s:%d:%d: %s", c->name, line, column, what);
}

/* A word or a label, at the cursor. */
static bool read_atom(Reader *r, Cursor *c, int classes, TreeLabelMode mode, bool lowercase,
                      Error *err) {
    int line = c->line, column = c->column;
    size_t start = c->pos;
    while (c->pos < c->size && !isspace((unsigned char)c->text[c->pos]) &&
           c->text[c->pos] != '(' && c->text[c->pos] != ')')
        cursor_advance(c);
    const char *atom = c->text + start;
    size_t length = c->pos - start;
    char message[TREE_MAX_WORD_BYTES + 128];
    if (r->depth == 0) {
        snprintf(message, sizeof message, "expected '(' to start a tree, found '%.*s'",
                 (int)(length < 40 ? length : 40), atom);
        return fail_at(err, c, line, column, message);
    }
    if (length > TREE_MAX_WORD_BYTES) {
        snprintf(message, sizeof message, "word longer than %d bytes", TREE_MAX_WORD_BYTES);
        return fail_at(err, c, line, column, message);
    }
    OpenBracket *top = &r->open[r->depth - 1];
    int label;
    if (top->fresh) {
        top->fresh = false;
        bool is_label = parse_label(atom, length, &label);
        if (is_label && label < classes) {
            top->label = label;
            return true;
        }
        if (mode == TREE_LABELS_REQUIRED) {
            if (is_label)
                snprintf(message, sizeof message, "label %d out of range 0..%d", label, classes - 1);
            else
                snprintf(message, sizeof message, "missing label: expected 0..%d after '(', found '%.*s'",
                         classes - 1, (int)(length < 40 ? length : 40), atom);
            return fail_at(err, c, line, column, message);
        }
    }
    push_child(r, node_add(&r->nodes, -1, -1, -1, word_copy(atom, length, lowercase)));
    return true;
}

/* '(' */
static bool open_bracket(Reader *r, Cursor *c, TreeLabelMode mode, int classes, Error *err) {
    if (r->depth > 0 && r->open[r->depth - 1].fresh) {
        OpenBracket *parent = &r->open[r->depth - 1];
        parent->fresh = false;
        if (mode == TREE_LABELS_REQUIRED) {
            char message[128];
            snprintf(message, sizeof message, "missing label: expected 0..%d after '(', found '('",
                     classes - 1);
            return fail_at(err, c, c->line, c->column, message);
        }
    }
    if (r->depth == TREE_MAX_DEPTH) {
        char message[128];
        snprintf(message, sizeof message, "brackets nested deeper than %d", TREE_MAX_DEPTH);
        return fail_at(err, c, c->line, c->column, message);
    }
    if (r->depth == 0) {
        r->tree_line = c->line;
        r->tree_column = c->column;
    }
    r->open[r->depth++] = (OpenBracket){.line = c->line, .column = c->column, .label = -1,
                                        .first_child = r->child_count, .fresh = true};
    cursor_advance(c);
    return true;
}

/* ')': turns the bracket's children into one node.  Returns true when a
 * whole tree has just been closed (in *root). */
static bool close_bracket(Reader *r, Cursor *c, bool *tree_done, Error *err) {
    if (r->depth == 0) return fail_at(err, c, c->line, c->column, "unexpected ')' with no open '('");
    OpenBracket top = r->open[--r->depth];
    int k = r->child_count - top.first_child;
    if (k == 0)
        return fail_at(err, c, top.line, top.column,
                       top.label >= 0 ? "a label with no word or subtree after it" : "empty brackets '()'");
    int *children = r->children + top.first_child;
    int node;
    if (k == 1) { /* a leaf "(2 good)", or a unary bracket that collapses */
        node = children[0];
        if (r->nodes.nodes[node].label < 0) r->nodes.nodes[node].label = top.label;
    } else {
        node = binarize(&r->nodes, children, k, top.label);
    }
    r->child_count = top.first_child;
    push_child(r, node);
    cursor_advance(c);
    *tree_done = r->depth == 0;
    return true;
}

/* Moves the finished tree into the bank, after checking its height. */
static bool finish_tree(Reader *r, const Cursor *c, Treebank *bank, Error *err) {
    Tree tree = {.nodes = r->nodes.nodes, .count = r->nodes.count, .line = r->tree_line};
    int *heights = xmalloc((size_t)tree.count * sizeof(int));
    int height = tree_heights(&tree, heights);
    free(heights);
    /* A tree of height h has h + 1 levels, and the writer nests h + 1
     * brackets: more than TREE_MAX_DEPTH could not be read back. */
    if (height + 1 > TREE_MAX_DEPTH) {
        char message[128];
        snprintf(message, sizeof message, "tree deeper than %d levels after binarization",
                 TREE_MAX_DEPTH);
        return fail_at(err, c, r->tree_line, r->tree_column, message);
    }
    for (int i = 0; i < tree.count; i++) tree.leaves += tree.nodes[i].left < 0;
    memset(&r->nodes, 0, sizeof r->nodes);
    r->child_count = 0;
    treebank_add(bank, &tree);
    return true;
}

/* NUL bytes and invalid UTF-8 are reported with their position. */
static bool check_text(const char *text, size_t size, const char *name, Error *err) {
    int line, column;
    const char *nul = memchr(text, '\0', size);
    if (nul != NULL) {
        locate(text, (size_t)(nul - text), &line, &column);
        return error_set(err, "%s:%d:%d: binary data (a NUL byte), expected trees as text", name,
                         line, column);
    }
    long bad = utf8_first_invalid(text, size);
    if (bad >= 0) {
        locate(text, (size_t)bad, &line, &column);
        return error_set(err, "%s:%d:%d: invalid UTF-8, expected trees as text", name, line, column);
    }
    return true;
}

bool tree_parse_text(const char *text, size_t size, const char *name, int classes,
                     TreeLabelMode mode, bool lowercase, Treebank *bank, Error *err) {
    if (!check_text(text, size, name, err)) return false;
    Cursor c = {.text = text, .size = size, .line = 1, .column = 1, .name = name};
    Reader r = {.open = xmalloc(TREE_MAX_DEPTH * sizeof(OpenBracket))};
    Treebank parsed;
    treebank_init(&parsed);
    bool ok = true;
    while (ok && c.pos < c.size) {
        char ch = text[c.pos];
        bool done = false;
        if (isspace((unsigned char)ch)) {
            cursor_advance(&c);
        } else if (ch == '(') {
            ok = open_bracket(&r, &c, mode, classes, err);
        } else if (ch == ')') {
            ok = close_bracket(&r, &c, &done, err) && (!done || finish_tree(&r, &c, &parsed, err));
        } else {
            ok = read_atom(&r, &c, classes, mode, lowercase, err);
        }
    }
    if (ok && r.depth > 0) {
        const OpenBracket *unclosed = &r.open[r.depth - 1];
        ok = fail_at(err, &c, unclosed->line, unclosed->column,
                     "'(' is never closed (unbalanced parentheses)");
    }
    if (ok && parsed.count == 0) ok = fail_at(err, &c, c.line, c.column, "no trees (the input is empty)");
    node_list_free(&r.nodes);
    free(r.open);
    free(r.children);
    if (ok)
        for (int i = 0; i < parsed.count; i++) treebank_add(bank, &parsed.trees[i]);
    else
        for (int i = 0; i < parsed.count; i++) tree_free(&parsed.trees[i]);
    free(parsed.trees);
    return ok;
}

bool tree_read_file(const char *path, int classes, TreeLabelMode mode, bool lowercase,
                    Treebank *bank, Error *err) {
    char *text;
    size_t size;
    if (!file_read_all(path, DATA_MAX_FILE_BYTES, &text, &size, err)) return false;
    bool ok = tree_parse_text(text, size, path, classes, mode, lowercase, bank, err);
    free(text);
    return ok;
}

/* ---- Plain sentences ---------------------------------------------------------------- */

bool tree_from_sentence(const char *sentence, bool lowercase, int line, Tree *tree, Error *err) {
    NodeList list = {0};
    const char *p = sentence;
    while (*p != '\0') {
        while (*p != '\0' && isspace((unsigned char)*p)) p++;
        const char *start = p;
        /* A bracket is a word of its own, as a Penn Treebank tokenizer makes
         * it: "(a lot)" is "(" "a" "lot" ")".  Kept inside a word, it could
         * not be written back as a tree that reads the same. */
        if (*p == '(' || *p == ')') p++;
        else
            while (*p != '\0' && !isspace((unsigned char)*p) && *p != '(' && *p != ')') p++;
        if (p == start) break;
        if (list.count == TREE_MAX_DEPTH) {
            node_list_free(&list);
            return error_set(err, "line %d: sentence longer than %d words", line, TREE_MAX_DEPTH);
        }
        if (p - start > TREE_MAX_WORD_BYTES) { /* the same limit as in a tree */
            node_list_free(&list);
            return error_set(err, "line %d: word longer than %d bytes", line, TREE_MAX_WORD_BYTES);
        }
        node_add(&list, -1, -1, -1, word_copy(start, (size_t)(p - start), lowercase));
    }
    if (list.count == 0) return error_set(err, "line %d: empty sentence", line);
    int words = list.count;
    /* Leaves are nodes 0..W-1; then (w[W-2] w[W-1]), then (w[W-3] that), ... */
    int right = words - 1;
    for (int i = words - 2; i >= 0; i--) right = node_add(&list, i, right, -1, NULL);
    *tree = (Tree){.nodes = list.nodes, .count = list.count, .leaves = words, .line = line};
    return true;
}

bool tree_parse_input(const char *text, size_t size, const char *name, int classes,
                      bool lowercase, Treebank *bank, Error *err) {
    size_t first = 0;
    while (first < size && isspace((unsigned char)text[first])) first++;
    if (first < size && text[first] == '(')
        return tree_parse_text(text, size, name, classes, TREE_LABELS_OPTIONAL, lowercase, bank, err);
    if (!check_text(text, size, name, err)) return false;
    int line = 0, added = 0;
    const char *p = text, *end = text + size;
    char *buffer = xmalloc(size + 1);
    bool ok = true;
    while (ok && p < end) {
        const char *newline = memchr(p, '\n', (size_t)(end - p));
        size_t length = newline ? (size_t)(newline - p) : (size_t)(end - p);
        line++;
        memcpy(buffer, p, length);
        buffer[length] = '\0';
        p += length + 1;
        size_t blank = strspn(buffer, " \t\r");
        if (buffer[blank] == '\0') continue;
        Tree tree;
        if (tree_from_sentence(buffer, lowercase, line, &tree, err)) {
            treebank_add(bank, &tree);
            added++;
        } else {
            ok = false;
        }
    }
    free(buffer);
    if (ok && added == 0) ok = error_set(err, "%s:1:1: no trees or sentences (the input is empty)", name);
    if (!ok && added > 0) { /* leave the bank as it was */
        for (int i = bank->count - added; i < bank->count; i++) tree_free(&bank->trees[i]);
        bank->count -= added;
    }
    return ok;
}

/* ---- The writer ------------------------------------------------------------------------- */

static void write_word(FILE *out, const char *word) {
    if (strcmp(word, "(") == 0) fputs("-LRB-", out);
    else if (strcmp(word, ")") == 0) fputs("-RRB-", out);
    else fputs(word, out);
}

/* Pre-order with an explicit stack of actions: OPEN(i) = 2i, CLOSE = -1,
 * SPACE = -2.  OPEN of an internal node pushes CLOSE, OPEN(right), SPACE,
 * OPEN(left) so that they pop in reading order. */
void tree_write(FILE *out, const Tree *tree, const int *labels) {
    enum { CLOSE = -1, SPACE = -2 };
    int *stack = xmalloc((size_t)(3 * tree->count + 3) * sizeof(int)); /* <= 3 per level */
    int top = 0;
    stack[top++] = 2 * (tree->count - 1);
    while (top > 0) {
        int action = stack[--top];
        if (action == CLOSE) { fputc(')', out); continue; }
        if (action == SPACE) { fputc(' ', out); continue; }
        const TreeNode *n = &tree->nodes[action / 2];
        int label = labels ? labels[action / 2] : n->label;
        fputc('(', out);
        if (label >= 0) fprintf(out, "%d ", label);
        if (n->left < 0) {
            write_word(out, n->text);
            fputc(')', out);
            continue;
        }
        stack[top++] = CLOSE;
        stack[top++] = 2 * n->right;
        stack[top++] = SPACE;
        stack[top++] = 2 * n->left;
    }
    free(stack);
}

char *tree_to_string(const Tree *tree, const int *labels) {
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (out == NULL) fatal("open_memstream failed");
    tree_write(out, tree, labels);
    fclose(out);
    return text;
}
