/* recursive_nn/model.c: the TreeRNN, the RNTN and the bag-of-words baseline.
 *
 * Legend: d hidden size, K classes, V vocabulary, B trees in the batch,
 *         N nodes in the batch, L leaves, n nodes of one level,
 *         x = [h_left; h_right] (2d), x1 = [h_left; h_right; 1] (2d+1).
 *
 * THE MODELS.  Every node gets a vector h (d):
 *   leaf (a word w):     h = E[w]                         (the embedding row)
 *   TreeRNN  (rnn):      h = tanh(W x + b)                 (Socher et al. 2011)
 *   RNTN     (rntn):     h = tanh(x^T V x + W x + b),      (Socher et al. 2013)
 *                        where (x^T V x)_k = sum_ij x_i V[k,i,j] x_j
 *   bag of words (bow):  h = (s_l h_l + s_r h_r) / (s_l + s_r)
 *                        with s the number of words under each child, so every
 *                        node holds the mean embedding of its words, and the
 *                        root the mean of the sentence: the baseline is the
 *                        same program with a composition that ignores order.
 * and every node is classified:  p = softmax(W_s h + b_s)          (K)
 * The loss is the cross-entropy summed over every labelled node of a tree,
 * averaged over the trees of the batch:
 *   loss = (1/B) sum_trees sum_nodes -log p_node[gold]
 * As in Socher et al., the bias is the last column of one matrix:
 * W x + b = [W | b] x1, stored as "compose.weight" (d, 2d+1).
 *
 * LEVEL BY LEVEL.  A node can be computed once its children are, so all
 * nodes of the same height (leaves 0, parent = 1 + max of the children)
 * across the whole batch are computed together: one matrix product per
 * level rather than one tiny matrix-vector product per node.  TreeBatch
 * (recursive_batch_build) orders the rows of the state matrix H (N, d) by
 * height; tree_compose_forward fills H level by level, and
 * tree_compose_backward, the backpropagation through structure, walks the
 * levels top down.  The two are one custom autograd op ("tree_compose"):
 * embedding lookup before it and the classifier after it are ordinary ops.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "recursive_nn.h"

const char *const recursive_model_names[3] = {"rnn", "rntn", "bow"};

/* ---- Parameters ---------------------------------------------------------------- */

void recursive_model_build(RecursiveModel *model, const RecursiveConfig *config) {
    memset(model, 0, sizeof *model);
    model->config = *config;
    int d = config->dim;
    ParamSet *ps = &model->params;
    params_init(ps);
    model->embedding = embedding_declare(ps, "embedding", config->vocab, d).table;
    if (config->kind != RECURSIVE_MODEL_BOW)
        model->compose = params_add_of(ps, "compose.weight", true, 2, d, 2 * d + 1);
    if (config->kind == RECURSIVE_MODEL_RNTN)
        model->tensor = params_add_of(ps, "compose.tensor", true, 3, d, 2 * d, 2 * d);
    model->classifier = linear_declare(ps, "classifier", d, config->classes, true);
    params_allocate(ps);
}

/* Embeddings U(-0.5, 0.5), like the tanh outputs of the internal nodes;
 * W Xavier-uniform with b = 0; V small, U(-1/(2d), 1/(2d)), so that the
 * tensor term starts about as large as W x (a few tenths). */
void recursive_model_init(RecursiveModel *model, Rng *rng) {
    int d = model->config.dim;
    init_uniform(model->embedding, -0.5f, 0.5f, rng);
    if (model->compose != NULL) {
        float a = sqrtf(6.0f / (float)(2 * d + d));
        for (int k = 0; k < d; k++)
            for (int j = 0; j <= 2 * d; j++)
                model->compose->data[k * (2 * d + 1) + j] = j < 2 * d ? a * (2 * rng_uniform(rng) - 1) : 0;
    }
    if (model->tensor != NULL) init_uniform(model->tensor, -0.5f / d, 0.5f / d, rng);
    linear_init(&model->classifier, rng);
}

void recursive_model_free(RecursiveModel *model) { params_free(&model->params); }

/* ---- Batching trees by level ---------------------------------------------------- */

TreeBatch *recursive_batch_build(Graph *g, const Tree *const *trees, int count) {
    Arena *arena = &g->arena;
    TreeBatch *b = arena_alloc(arena, sizeof *b);
    memset(b, 0, sizeof *b);
    b->trees = count;
    b->tree_start = arena_alloc(arena, (size_t)(count + 1) * sizeof(int));
    b->tree_start[0] = 0;
    for (int t = 0; t < count; t++) {
        b->tree_start[t + 1] = b->tree_start[t] + trees[t]->count;
        b->leaves += trees[t]->leaves;
    }
    int N = b->nodes = b->tree_start[count];
    int *height = arena_alloc(arena, (size_t)N * sizeof(int)); /* (N) by tree node */
    int tallest = 0;
    for (int t = 0; t < count; t++) {
        int h = tree_heights(trees[t], height + b->tree_start[t]);
        tallest = h > tallest ? h : tallest;
    }
    /* Rows: level by level; inside a level, tree by tree, node by node. */
    b->levels = tallest + 1;
    b->level_start = arena_alloc(arena, (size_t)(b->levels + 1) * sizeof(int));
    int *fill = arena_alloc(arena, (size_t)(b->levels + 1) * sizeof(int));
    memset(fill, 0, (size_t)(b->levels + 1) * sizeof(int));
    for (int i = 0; i < N; i++) fill[height[i] + 1]++;
    for (int l = 0; l < b->levels; l++) fill[l + 1] += fill[l];
    memcpy(b->level_start, fill, (size_t)(b->levels + 1) * sizeof(int));
    b->row_of = arena_alloc(arena, (size_t)N * sizeof(int));
    for (int i = 0; i < N; i++) b->row_of[i] = fill[height[i]]++;

    b->left = arena_alloc(arena, (size_t)N * sizeof(int));
    b->right = arena_alloc(arena, (size_t)N * sizeof(int));
    b->span = arena_alloc(arena, (size_t)N * sizeof(int));
    b->labels = arena_alloc(arena, (size_t)N * sizeof(int));
    b->words = arena_alloc(arena, (size_t)(b->leaves > 0 ? b->leaves : 1) * sizeof(int));
    for (int t = 0; t < count; t++) {
        const int *row = b->row_of + b->tree_start[t];
        for (int i = 0; i < trees[t]->count; i++) { /* children come first */
            const TreeNode *node = &trees[t]->nodes[i];
            int r = row[i];
            b->labels[r] = node->label;
            b->labelled += node->label >= 0;
            if (node->left < 0) {
                if (node->word < 0) fatal("recursive_batch_build: leaf '%s' has no word id (call tree_set_words)", node->text);
                b->left[r] = b->right[r] = -1;
                b->span[r] = 1;
                b->words[r] = node->word;
            } else {
                b->left[r] = row[node->left];
                b->right[r] = row[node->right];
                b->span[r] = b->span[b->left[r]] + b->span[b->right[r]];
            }
        }
    }
    return b;
}

/* ---- The composition op: forward ------------------------------------------------ */

/* What tree_compose_backward needs, in the tape entry:
 *   int_args  = {model kind, levels, N, L}
 *   indices   = level_start (levels+1), left (N), right (N), span (N)
 *   saved     = X1 (N-L, 2d+1): [h_l; h_r; 1] of every internal row,
 *               then for the RNTN  VX (N-L, d, 2d): VX[r,k,:] = V[k] x_r,
 *               then backward's scratch: dZ (N-L, d) and, for the RNTN,
 *               dY (N-L, d*2d) for every internal row, and dx (n, 2d) for
 *               the widest level n                                         */
enum { SAVED_KIND, SAVED_LEVELS, SAVED_NODES, SAVED_LEAVES };

/* EXERCISE tree_compose: compose_level below: rows [s, e) of H (N, d) from their children's rows
 * b->left[r] and b->right[r]: fill x1 (n, 2d+1) with [h_left; h_right; 1] for each row (backward
 * reads it), then h = tanh([W | b] x1) with W = model->compose (d, 2d+1), plus for the RNTN
 * (model->tensor (d, 2d, 2d) not NULL) the term x^T V[k] x, with VX = x V^T kept in vx.
 * STUB: static void compose_level(const RecursiveModel *model, const TreeBatch *b, float *H, float *x1,
 * STUB:                           float *vx, int s, int e) {
 * STUB:     (void)model, (void)b, (void)H, (void)x1, (void)vx, (void)s, (void)e;
 * STUB:     exercise_missing("tree_compose");
 * STUB: } */
/* x^T V x for one level, given VX = x V^T computed by a matmul:
 *   z[r,k] += sum_i x[r,i] VX[r,k,i]                                           */
static void add_tensor_term(float *z, const float *x1, const float *vx, int n, int d) {
    for (int r = 0; r < n; r++) {
        const float *x = x1 + (size_t)r * (2 * d + 1);
        for (int k = 0; k < d; k++) {
            const float *v = vx + ((size_t)r * d + k) * 2 * d;
            float sum = 0;
            for (int i = 0; i < 2 * d; i++) sum += x[i] * v[i];
            z[(size_t)r * d + k] += sum;
        }
    }
}

/* One level of the TreeRNN/RNTN: rows [s, e) of H from their children. */
static void compose_level(const RecursiveModel *model, const TreeBatch *b, float *H, float *x1,
                          float *vx, int s, int e) {
    int d = model->config.dim, n = e - s, w = 2 * d + 1;
    for (int r = s; r < e; r++) { /* x1 = [h_left; h_right; 1] */
        float *x = x1 + (size_t)(r - s) * w;
        memcpy(x, H + (size_t)b->left[r] * d, (size_t)d * sizeof(float));
        memcpy(x + d, H + (size_t)b->right[r] * d, (size_t)d * sizeof(float));
        x[2 * d] = 1.0f;
    }
    float *z = H + (size_t)s * d; /* (n, d): pre-activations, then tanh in place */
    /* z = x1 [W | b]^T:  (n, 2d+1) @ (2d+1, d) */
    matmul(&(MatmulSpec){.batch = 1, .M = n, .N = d, .K = w, .A = x1, .lda = w,
                         .B = model->compose->data, .ldb = w, .transpose_b = true, .C = z, .ldc = d});
    if (model->tensor != NULL) {
        /* VX = x V^T with V seen as (d*2d, 2d):  (n, 2d) @ (2d, d*2d) */
        matmul(&(MatmulSpec){.batch = 1, .M = n, .N = d * 2 * d, .K = 2 * d, .A = x1, .lda = w,
                             .B = model->tensor->data, .ldb = 2 * d, .transpose_b = true,
                             .C = vx, .ldc = d * 2 * d});
        add_tensor_term(z, x1, vx, n, d);
    }
    for (int i = 0; i < n * d; i++) z[i] = tanhf(z[i]);
}
/* END EXERCISE */

/* Bag of words: each row is the word-weighted mean of its children. */
static void average_level(const TreeBatch *b, float *H, int d, int s, int e) {
    for (int r = s; r < e; r++) {
        float wl = (float)b->span[b->left[r]] / (float)b->span[r];
        float wr = (float)b->span[b->right[r]] / (float)b->span[r];
        const float *hl = H + (size_t)b->left[r] * d, *hr = H + (size_t)b->right[r] * d;
        for (int i = 0; i < d; i++) H[(size_t)r * d + i] = wl * hl[i] + wr * hr[i];
    }
}

static void tree_compose_backward(TapeEntry *entry);

/* leaves (L, d) -> H (N, d), level by level. */
Tensor *recursive_compose(Graph *g, const RecursiveModel *model, const TreeBatch *b,
                          Tensor *leaves) {
    int d = model->config.dim, N = b->nodes, L = b->leaves, internal = N - L;
    tensor_check_shapes(leaves->ndim == 2 && leaves->shape[0] == L && leaves->shape[1] == d,
                        "tree_compose", leaves, leaves, "leaves must be (L, d)");
    bool grad = graph_needs_grad(g, leaves, model->compose, model->tensor);
    Tensor *H = tensor_of(g, grad, 2, N, d); /* (N, d) */
    memcpy(H->data, leaves->data, (size_t)L * d * sizeof(float));
    bool bow = model->config.kind == RECURSIVE_MODEL_BOW;
    size_t x1_floats = bow ? 0 : (size_t)internal * (2 * d + 1);
    size_t vx_floats = model->tensor ? (size_t)internal * d * 2 * d : 0;
    /* Backward's scratch (dZ, dY, dx) is allocated here too, so that the
     * backward pass allocates nothing. */
    int widest = 0;
    for (int level = 1; level < b->levels; level++) {
        int n = b->level_start[level + 1] - b->level_start[level];
        widest = n > widest ? n : widest;
    }
    size_t scratch_floats = grad && !bow ? (size_t)internal * d + vx_floats + (size_t)widest * 2 * d : 0;
    float *saved = arena_alloc(&g->arena, (x1_floats + vx_floats + scratch_floats + 1) * sizeof(float));
    for (int level = 1; level < b->levels; level++) {
        int s = b->level_start[level], e = b->level_start[level + 1];
        if (bow) {
            average_level(b, H->data, d, s, e);
        } else {
            float *x1 = saved + (size_t)(s - L) * (2 * d + 1);
            float *vx = model->tensor ? saved + x1_floats + (size_t)(s - L) * d * 2 * d : NULL;
            compose_level(model, b, H->data, x1, vx, s, e);
        }
    }
    if (grad) {
        TapeEntry *entry = graph_record_custom(g, "tree_compose", tree_compose_backward, H, leaves,
                                               model->compose, model->tensor);
        entry->int_args[SAVED_KIND] = model->config.kind;
        entry->int_args[SAVED_LEVELS] = b->levels;
        entry->int_args[SAVED_NODES] = N;
        entry->int_args[SAVED_LEAVES] = L;
        int *ints = arena_alloc(&g->arena, (size_t)(b->levels + 1 + 3 * N) * sizeof(int));
        memcpy(ints, b->level_start, (size_t)(b->levels + 1) * sizeof(int));
        memcpy(ints + b->levels + 1, b->left, (size_t)N * sizeof(int));
        memcpy(ints + b->levels + 1 + N, b->right, (size_t)N * sizeof(int));
        memcpy(ints + b->levels + 1 + 2 * N, b->span, (size_t)N * sizeof(int));
        entry->indices = ints;
        entry->saved = saved;
    }
    graph_check_finite(g, "tree_compose", H);
    return H;
}

/* ---- The composition op: backward (backpropagation through structure) -------- */

/* The backward's scratch, allocated by the forward (tree_compose_backward
 * hands it out). */
typedef struct {
    float *dz; /* (N-L, d)     every internal row            */
    float *dy; /* (N-L, d*2d)  every internal row (RNTN)     */
    float *dx; /* (n, 2d)      one level                     */
} BackwardScratch;

/* EXERCISE tree_compose_backward: compose_level_backward (one level: dH of the rows [s, e) into
 * dH of their children, through tanh, W and, for the RNTN, V) and compose_weights_backward
 * (W->grad and V->grad, either may be NULL, once every level is done), with the scratch above.
 * entry->saved starts with X1 (N-L, 2d+1) and, for the RNTN, VX (N-L, d*2d), as the forward left them.
 * STUB: static void compose_level_backward(const TapeEntry *entry, const BackwardScratch *work,
 * STUB:                                    const int *left, const int *right, int s, int e) {
 * STUB:     (void)entry, (void)work, (void)left, (void)right, (void)s, (void)e;
 * STUB:     exercise_missing("tree_compose_backward");
 * STUB: }
 * STUB:
 * STUB: static void compose_weights_backward(const TapeEntry *entry, const BackwardScratch *work) {
 * STUB:     (void)entry, (void)work;
 * STUB:     exercise_missing("tree_compose_backward");
 * STUB: } */
/* The levels are visited top down, so when a level is reached, the gradient
 * dH of each of its rows is complete: it came from the classifier at that
 * node and from the node's parent, which sits on a higher level.
 * For z = [W|b] x1 + (x^T V x) and h = tanh(z), at each level:
 *   dz       = dh * (1 - h^2)
 *   dx       = dz W                              (n, d) @ (d, 2d)
 *   RNTN: with VX[k,:] = V[k] x,
 *   dx_i    += sum_k dz_k (VX[k,i] + (V[k]^T x)_i)
 *            = sum_k dz_k VX[k,i]  +  (dY V)_i,  dY[k,i] = dz_k x_i
 * then dx is split: dH[left] += dx[:d], dH[right] += dx[d:].
 * The weight gradients do not feed the levels below, so they wait until
 * every level is done and are then one product each over all N-L rows:
 *   d[W|b]  += dZ^T X1                           (d, N-L) @ (N-L, 2d+1)
 *   dV      += dY^T X,  i.e. dV[k] += sum_rows dz_k x x^T
 *                                                (d*2d, N-L) @ (N-L, 2d)
 * Bag of words: dH[left] += dh s_l/s, dH[right] += dh s_r/s.                  */

static void compose_level_backward(const TapeEntry *entry, const BackwardScratch *work,
                                   const int *left, const int *right, int s, int e) {
    Tensor *H = entry->out, *W = entry->inputs[1], *V = entry->inputs[2];
    int d = H->shape[1], w = 2 * d + 1, n = e - s, L = entry->int_args[SAVED_LEAVES];
    int internal = entry->int_args[SAVED_NODES] - L;
    const float *x1 = entry->saved + (size_t)(s - L) * w;
    const float *h = H->data + (size_t)s * d, *dh = H->grad + (size_t)s * d;
    float *dz = work->dz + (size_t)(s - L) * d; /* (n, d) */
    for (int i = 0; i < n * d; i++) dz[i] = dh[i] * (1 - h[i] * h[i]);
    /* dx = dz W[:, :2d] */
    matmul(&(MatmulSpec){.batch = 1, .M = n, .N = 2 * d, .K = d, .A = dz, .lda = d,
                         .B = W->data, .ldb = w, .C = work->dx, .ldc = 2 * d});
    if (V != NULL) {
        const float *vx = entry->saved + (size_t)internal * w + (size_t)(s - L) * d * 2 * d;
        float *dy_level = work->dy + (size_t)(s - L) * d * 2 * d; /* (n, d*2d) */
        for (int r = 0; r < n; r++) {
            const float *x = x1 + (size_t)r * w;
            float *dx = work->dx + (size_t)r * 2 * d;
            for (int k = 0; k < d; k++) {
                float dzk = dz[(size_t)r * d + k];
                const float *v = vx + ((size_t)r * d + k) * 2 * d;
                float *dy = dy_level + ((size_t)r * d + k) * 2 * d;
                for (int i = 0; i < 2 * d; i++) {
                    dx[i] += dzk * v[i];
                    dy[i] = dzk * x[i];
                }
            }
        }
        /* dx += dY V:  (n, d*2d) @ (d*2d, 2d) */
        matmul(&(MatmulSpec){.batch = 1, .M = n, .N = 2 * d, .K = d * 2 * d, .A = dy_level,
                             .lda = d * 2 * d, .B = V->data, .ldb = 2 * d, .C = work->dx,
                             .ldc = 2 * d, .accumulate = true});
    }
    for (int r = s; r < e; r++) {
        const float *dx = work->dx + (size_t)(r - s) * 2 * d;
        float *dl = H->grad + (size_t)left[r] * d, *dr = H->grad + (size_t)right[r] * d;
        for (int i = 0; i < d; i++) dl[i] += dx[i];
        for (int i = 0; i < d; i++) dr[i] += dx[d + i];
    }
}

/* After every level: d[W|b] += dZ^T X1 and dV += dY^T X over all rows. */
static void compose_weights_backward(const TapeEntry *entry, const BackwardScratch *work) {
    Tensor *H = entry->out, *W = entry->inputs[1], *V = entry->inputs[2];
    int d = H->shape[1], w = 2 * d + 1;
    int internal = entry->int_args[SAVED_NODES] - entry->int_args[SAVED_LEAVES];
    if (internal == 0) return;
    const float *x1 = entry->saved; /* (N-L, 2d+1) */
    if (W->grad != NULL)
        matmul(&(MatmulSpec){.batch = 1, .M = d, .N = w, .K = internal, .A = work->dz, .lda = d,
                             .transpose_a = true, .B = x1, .ldb = w, .C = W->grad, .ldc = w,
                             .accumulate = true});
    if (V != NULL && V->grad != NULL)
        matmul(&(MatmulSpec){.batch = 1, .M = d * 2 * d, .N = 2 * d, .K = internal, .A = work->dy,
                             .lda = d * 2 * d, .transpose_a = true, .B = x1, .ldb = w,
                             .C = V->grad, .ldc = 2 * d, .accumulate = true});
}
/* END EXERCISE */

static void average_level_backward(Tensor *H, const int *left, const int *right, const int *span,
                                   int s, int e) {
    int d = H->shape[1];
    for (int r = s; r < e; r++) {
        float wl = (float)span[left[r]] / (float)span[r], wr = (float)span[right[r]] / (float)span[r];
        const float *dh = H->grad + (size_t)r * d;
        float *dl = H->grad + (size_t)left[r] * d, *dr = H->grad + (size_t)right[r] * d;
        for (int i = 0; i < d; i++) dl[i] += wl * dh[i];
        for (int i = 0; i < d; i++) dr[i] += wr * dh[i];
    }
}

static void tree_compose_backward(TapeEntry *entry) {
    Tensor *H = entry->out, *leaves = entry->inputs[0];
    int d = H->shape[1], levels = entry->int_args[SAVED_LEVELS], N = entry->int_args[SAVED_NODES];
    const int *level_start = entry->indices, *left = level_start + levels + 1;
    const int *right = left + N, *span = right + N;
    bool bow = entry->int_args[SAVED_KIND] == RECURSIVE_MODEL_BOW;
    BackwardScratch work = {0};
    if (!bow) {
        int internal = N - entry->int_args[SAVED_LEAVES];
        bool rntn = entry->inputs[2] != NULL;
        /* after X1 (N-L, 2d+1) and, for the RNTN, VX (N-L, d*2d) */
        work.dz = entry->saved + (size_t)internal * (2 * d + 1) + (rntn ? (size_t)internal * d * 2 * d : 0);
        work.dy = rntn ? work.dz + (size_t)internal * d : NULL;
        work.dx = work.dz + (size_t)internal * d + (rntn ? (size_t)internal * d * 2 * d : 0);
    }
    for (int level = levels - 1; level >= 1; level--) {
        if (bow) average_level_backward(H, left, right, span, level_start[level], level_start[level + 1]);
        else compose_level_backward(entry, &work, left, right, level_start[level], level_start[level + 1]);
    }
    if (!bow) compose_weights_backward(entry, &work);
    if (leaves->grad != NULL) {
        int L = entry->int_args[SAVED_LEAVES];
        for (int i = 0; i < L * d; i++) leaves->grad[i] += H->grad[i];
    }
}

/* ---- Forward and loss ----------------------------------------------------------- */

Tensor *recursive_forward(Graph *g, const RecursiveModel *model, const TreeBatch *batch) {
    Embedding embedding = {.table = model->embedding};
    Tensor *leaves = embedding_forward(g, &embedding, batch->words, batch->leaves); /* (L, d) */
    Tensor *H = recursive_compose(g, model, batch, leaves);                      /* (N, d) */
    return linear_forward(g, &model->classifier, H);                              /* (N, K) */
}

Tensor *recursive_loss(Graph *g, Tensor *logits, const TreeBatch *batch) {
    /* op_cross_entropy averages over the labelled rows; scaling by
     * labelled / B turns that into the per-tree sum, averaged over trees. */
    Tensor *mean = op_cross_entropy(g, logits, batch->labels, -1);
    return op_scale(g, mean, (float)batch->labelled / (float)batch->trees);
}
