/* recursive_nn/recursive_nn.h: recursive (tree-structured) networks for
 * sentiment, after Socher et al. (2011, 2013): a TreeRNN, an RNTN, and a
 * bag-of-words baseline, all with a softmax classifier on every node.
 *
 * Legend used in every file of this folder:
 *   d  hidden and embedding size        K  classes (5 for sentiment)
 *   V  vocabulary size                  B  trees in a batch
 *   N  nodes (all trees of a batch)     L  leaves (words) of a batch
 *   n  nodes of one level of a batch    P  nodes of one tree
 *
 * Files, in reading order:
 *   tree.c   the Tree, the Penn Treebank / SST reader and writer, plain
 *            sentences, binarization
 *   data.c   the tasks (sentiment, arith, files), vocabulary, GloVe vectors
 *   model.c  parameters, batching trees level by level, the composition
 *            op (forward and backpropagation through structure), the loss
 *   train.c  optimizers, training loop, evaluation and metrics, checkpoints
 *   plots.c  tree drawings, confusion matrix, embedding PCA, curves
 *   main.c   the command line
 */
#ifndef TINYZOO_RECURSIVE_NN_H
#define TINYZOO_RECURSIVE_NN_H

#include <stdbool.h>
#include <stdio.h>

#include "checkpoint.h"
#include "cli.h"
#include "data.h"
#include "nn.h"
#include "plot.h"
#include "tensor.h"
#include "util.h"

/* ==== Trees (tree.c) ======================================================== */

/* Deepest bracket nesting the reader accepts, and the deepest tree (after
 * binarization) the model accepts: far above any parsed sentence (the SST's
 * deepest is about 30), low enough that a runaway file fails fast. */
enum { TREE_MAX_DEPTH = 1000, TREE_MAX_WORD_BYTES = 256 };

typedef struct {
    int left, right; /* child node ids; -1 for a leaf                           */
    int label;       /* gold label 0..K-1, or -1 when the node has none          */
    int word;        /* leaf: vocabulary id (tree_set_words); internal: -1       */
    char *text;      /* leaf: the word, unescaped ("(" not "-LRB-"); else NULL  */
} TreeNode;

/* A binary tree.  Nodes are stored children first, so the root is the last
 * node and a loop over 0..P-1 visits every child before its parent: every
 * pass over a tree is a plain loop, never a recursion. */
typedef struct {
    TreeNode *nodes; /* (P) */
    int count;       /* P   */
    int leaves;      /* words */
    int line;        /* line of the input where the tree starts (1-based) */
} Tree;

typedef struct {
    Tree *trees; /* (count) */
    int count;
    int capacity;
} Treebank;

typedef enum {
    TREE_LABELS_REQUIRED, /* every bracket must start with a label 0..K-1     */
    TREE_LABELS_OPTIONAL, /* a leading integer is a label; others have none   */
} TreeLabelMode;

void treebank_init(Treebank *bank);
void treebank_free(Treebank *bank);
void tree_free(Tree *tree);
/* Takes ownership of *tree. */
void treebank_add(Treebank *bank, Tree *tree);

/* Parses every tree of `text` (SST / Penn Treebank s-expressions).  `name`
 * (a file name) prefixes errors, which read "name:line:column: what".
 * Labels must lie in [0, classes).  Appends to `bank`; on failure appends
 * nothing. */
bool tree_parse_text(const char *text, size_t size, const char *name, int classes,
                     TreeLabelMode mode, bool lowercase, Treebank *bank, Error *err);
bool tree_read_file(const char *path, int classes, TreeLabelMode mode, bool lowercase,
                    Treebank *bank, Error *err);
/* One plain sentence (words separated by spaces; '(' and ')' are words of
 * their own) as an unlabelled right-branching tree: "a b c d" ->
 * (a (b (c d))).  False for an empty
 * sentence, one longer than TREE_MAX_DEPTH words or with a word longer
 * than TREE_MAX_WORD_BYTES. */
bool tree_from_sentence(const char *sentence, bool lowercase, int line, Tree *tree, Error *err);
/* Reads `text` as trees when its first non-blank character is '(', else as
 * one plain sentence per non-empty line. */
bool tree_parse_input(const char *text, size_t size, const char *name, int classes,
                      bool lowercase, Treebank *bank, Error *err);

/* Writes the tree in SST format on one line (no newline).  `labels` (P)
 * gives the label of each node (predictions); NULL writes the gold labels.
 * A node whose label is -1 is written without one.  Words are escaped
 * ("(" as -LRB-, ")" as -RRB-). */
void tree_write(FILE *out, const Tree *tree, const int *labels);
/* The same into a malloc'd string. */
char *tree_to_string(const Tree *tree, const int *labels);
/* Height of each node (leaves 0) into heights (P); returns the root's. */
int tree_heights(const Tree *tree, int *heights);

/* ==== Data and tasks (data.c) =============================================== */

typedef enum { RECURSIVE_TASK_SENTIMENT, RECURSIVE_TASK_ARITH, RECURSIVE_TASK_FILES } RecursiveTask;

typedef struct {
    Treebank train, dev, test;
    Treebank probe;      /* negation probe pairs (sentiment only; else empty) */
    int classes;         /* K */
    RecursiveTask task;
} RecursiveData;

typedef struct {
    int train_size, dev_size, test_size, probe_size; /* generated tasks      */
    const char *data_dir;      /* --data: DIR/{train,dev,test}.txt            */
    const char *train_file, *dev_file, *test_file;   /* override single files */
    bool lowercase;
    int arith_depth;           /* arith: deepest operator nesting            */
} RecursiveDataOptions;

/* The arithmetic task: expressions such as (+ 3 (* 4 2)), whose value
 * mod 10 is the label of every expression node. */
void recursive_arith_generate(Treebank *bank, int count, int max_depth, Rng *rng);
bool recursive_data_load(RecursiveData *data, RecursiveTask task, const RecursiveDataOptions *opt,
                         unsigned long seed, Error *err);
void recursive_data_free(RecursiveData *data);

/* Vocabulary: id 0 is "<unk>"; other words in order of first appearance in
 * the training trees, keeping those seen at least min_count times. */
void recursive_vocab_build(Vocab *vocab, const Treebank *train, int min_count);
/* Sets node.word of every leaf (unknown words -> 0, "<unk>"). */
void tree_set_words(Treebank *bank, const Vocab *vocab);

/* ==== Model (model.c) ======================================================= */

typedef enum { RECURSIVE_MODEL_RNN, RECURSIVE_MODEL_RNTN, RECURSIVE_MODEL_BOW } RecursiveModelKind;
extern const char *const recursive_model_names[3]; /* "rnn", "rntn", "bow" */

typedef struct {
    RecursiveModelKind kind;
    int dim;     /* d */
    int classes; /* K */
    int vocab;   /* V */
} RecursiveConfig;

typedef struct {
    RecursiveConfig config;
    ParamSet params;
    Tensor *embedding;  /* (V, d)          "embedding.weight": row 0 is <unk>    */
    Tensor *compose;    /* (d, 2d+1)       "compose.weight": [W | b], rnn/rntn   */
    Tensor *tensor;     /* (d, 2d, 2d)     "compose.tensor": V of the RNTN        */
    Linear classifier;  /* weight (K, d), bias (K)                               */
} RecursiveModel;

void recursive_model_build(RecursiveModel *model, const RecursiveConfig *config);
void recursive_model_init(RecursiveModel *model, Rng *rng);
void recursive_model_free(RecursiveModel *model);

/* A batch of trees, flattened level by level: rows of the (N, d) state
 * matrix are ordered by node height (all leaves, then every node of height
 * 1, ...), and within a level by tree then node.  One level is then one
 * matrix product for the whole batch.  Lives in the graph's arena. */
typedef struct {
    int trees;        /* B */
    int nodes;        /* N */
    int leaves;       /* L: rows [0, L) are the leaves */
    int levels;       /* number of heights, 1 + the tallest tree's height */
    int *level_start; /* (levels + 1) first row of each level */
    int *left;        /* (N) row of the left child; -1 for a leaf  */
    int *right;       /* (N) row of the right child; -1 for a leaf */
    int *span;        /* (N) leaves under the row (bag-of-words weights) */
    int *words;       /* (L) vocabulary id of each leaf row */
    int *labels;      /* (N) gold label of each row, -1 for none */
    int *tree_start;  /* (B + 1) the nodes of tree b are rows row_of[tree_start[b] ...] */
    int *row_of;      /* (N) row of node i of tree b at tree_start[b] + i */
    int labelled;     /* rows with a label */
} TreeBatch;

TreeBatch *recursive_batch_build(Graph *g, const Tree *const *trees, int count);
/* states (N, d) of every node of the batch.  Records one "tree_compose"
 * op on the tape whose backward is backpropagation through structure. */
Tensor *recursive_compose(Graph *g, const RecursiveModel *model, const TreeBatch *batch,
                          Tensor *leaves);
/* logits (N, K) for every node of the batch. */
Tensor *recursive_forward(Graph *g, const RecursiveModel *model, const TreeBatch *batch);
/* Loss = sum over labelled nodes of -log p(gold), averaged over the trees
 * of the batch.  (1) */
Tensor *recursive_loss(Graph *g, Tensor *logits, const TreeBatch *batch);

/* ==== Training and evaluation (train.c) ===================================== */

enum { RECURSIVE_MAX_CLASSES = 10 };

typedef enum { RECURSIVE_OPT_ADAM, RECURSIVE_OPT_ADAGRAD } RecursiveOptimizerKind;

typedef struct {
    long correct_nodes, nodes;          /* all labelled nodes, fine-grained  */
    long correct_roots, roots;
    long binary_correct_nodes, binary_nodes; /* non-neutral gold, pos vs neg */
    long binary_correct_roots, binary_roots;
    double loss_sum;                    /* sum of node losses                */
    long confusion[RECURSIVE_MAX_CLASSES][RECURSIVE_MAX_CLASSES]; /* [gold][predicted] */
    int classes;
} RecursiveMetrics;

/* Evaluates `bank` in batches of `batch` trees without gradients; fills
 * metrics and, when `predictions` is not NULL, the predicted label of
 * every node of every tree (predictions[t] has trees[t].count entries). */
void recursive_evaluate(Graph *g, const RecursiveModel *model, const Treebank *bank, int batch,
                        RecursiveMetrics *metrics, int **predictions);
double recursive_metric(long correct, long total);

/* Every setting of a run (main.c's option table points into it). */
typedef struct {
    CommonOptions common;
    int task;              /* RecursiveTask                                  */
    int model;             /* RecursiveModelKind                             */
    int dim;               /* d                                              */
    int optimizer;         /* RecursiveOptimizerKind                         */
    float l2;              /* L2 regularisation strength                     */
    int min_count;         /* rarer training words map to <unk>              */
    long eval_every;       /* steps between validation passes                */
    int draw;              /* trees drawn after training                     */
    const char *embeddings; /* GloVe-format text file, or NULL              */
    RecursiveDataOptions data;
} RecursiveSettings;

/* Loads GloVe-format vectors ("word v1 ... vd" per line) into the rows of
 * table (V, d) for the words of the vocabulary; other rows are untouched.
 * *found receives how many vocabulary words the file held.  On error
 * (a line with the wrong number of values, a bad number) nothing changes. */
bool recursive_load_embeddings(const char *path, const Vocab *vocab, float *table, int dim,
                               int *found, Error *err);

/* What a training run carries across --resume besides weights and
 * optimizer: where the batches are, and the training loss summed since the
 * last metrics.csv row. */
typedef struct {
    Rng data_rng;
    double loss_sum;
    long loss_count;
} RecursiveTrainState;

/* Checkpoints: metadata "architecture" = "recursive_nn", "model", "dim",
 * "classes", "vocab" (JSON), "task", "lowercase", "step", and with `state`
 * (NULL outside training) "rng.data", "train.loss_sum", "train.loss_count". */
bool recursive_save(const char *path, const RecursiveModel *model, const Optimizer *opt,
                    const Vocab *vocab, const RecursiveSettings *s, long step,
                    const RecursiveTrainState *state, Error *err);
/* Rebuilds the model (and vocabulary) a checkpoint describes and loads its
 * weights; with `opt` (already zeroed), also the optimizer state, which is
 * initialised here to the kind the checkpoint used.  `meta` receives the
 * metadata (free it with metadata_free); on failure it is left empty. */
bool recursive_load(const char *path, RecursiveModel *model, Optimizer *opt, Vocab *vocab,
                    Metadata *meta, Error *err);

/* The whole `train` command: data, model, loop, checkpoints, final
 * evaluation, plots.  `options` (count) are written to config.txt once the
 * data and any --resume checkpoint have loaded.  Returns the exit status. */
int recursive_train(const RecursiveSettings *s, const Option *options, int count);
/* Prints the evaluation of one set, SST style (fine-grained and binary,
 * all nodes and roots), and optionally its confusion matrix. */
void recursive_print_metrics(FILE *out, const char *name, const RecursiveMetrics *m,
                             bool confusion);

/* AdaGrad (Duchi et al. 2011), as Socher et al. trained the RNTN:
 *   G += g^2;  w -= lr g / (sqrt(G) + eps)
 * with the L2 term added to g.  G is kept in opt->moment1 (the Optimizer is
 * of kind SGD so that checkpoints save and restore it). */
void recursive_adagrad_step(Optimizer *opt, ParamSet *ps, float lr, float l2);

#endif

/* ==== Commands defined outside main.c (bench.c) ============================== */

int recursive_bench_command(int argc, char **argv);
int recursive_dump_command(int argc, char **argv);

/* ==== Plots (plots.c) ======================================================== */

/* loss.png and accuracy.png from <dir>/metrics.csv. */
bool recursive_plot_curves(const char *dir, PlotTerm term, Error *err);
/* confusion.png: rows gold, columns predicted, as fractions of each row. */
bool recursive_plot_confusion(const PlotTarget *target, const RecursiveMetrics *m, Error *err);
/* embeddings.png: the word vectors projected on their first two principal
 * axes, each word coloured by its leaf label in `train` (if any). */
bool recursive_plot_embeddings(const PlotTarget *target, const RecursiveModel *model,
                               const Vocab *vocab, const Treebank *train, Error *err);
/* <stem>.png: the tree drawn top down, each node coloured by its predicted
 * label, with "gold g" beside the nodes where the gold label differs. */
bool recursive_plot_tree(const PlotTarget *target, const char *stem, const char *title,
                         const Tree *tree, const int *predicted, int classes, Error *err);
