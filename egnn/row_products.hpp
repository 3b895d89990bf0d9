// Matrix products whose every row is computed by the same arithmetic wherever
// it sits: Y[r, :] (+)= Σ_k X[r, k] M[k, :], k ascending, one fused or unfused
// multiply-add per term exactly as the compiler emits it for every row alike.
//
// Why not Eigen's product: its kernels block the rows by the register tile
// and send the rows left over to other kernels, which sum in another order,
// so when several samples are stacked into one matrix a sample's results
// would round according to where its rows fall. With these, a sample stacked
// anywhere gives bit for bit what it gives alone, and threads may take any
// split of the rows.
//
// Internal to egnn/. Shapes are small (depth and width are the hidden width,
// 32 to 256); the rows are many (nodes or edges of every stacked sample).
#pragma once

#include <Eigen/Core>
#include <algorithm>

namespace enf::detail {

// Y[r, c] (+)= Σ_k X[r, k] M[k, c] for r < rows, c < cols; X row stride ldx,
// M row-major [depth, cols] with row stride ldm, Y row stride ldy. The sum
// over k is formed from zero and then stored (or added to Y).
template <class T>
void row_products(const T* X, Eigen::Index rows, Eigen::Index depth, Eigen::Index ldx, const T* M,
                  Eigen::Index ldm, Eigen::Index cols, T* Y, Eigen::Index ldy, bool accumulate) {
  // Two rows by a tile of 128 bytes of columns: the accumulators stay in
  // registers and every M value loaded serves two rows (measured on AVX-512
  // and AVX2: above Eigen's own product for these shapes, 32 to 64 wide).
  constexpr Eigen::Index Tile = 128 / sizeof(T), Rows = 2;
  auto store = [&](const T* a, T* y, Eigen::Index w) {
    if (accumulate)
      for (Eigen::Index c = 0; c < w; ++c) y[c] += a[c];
    else
      for (Eigen::Index c = 0; c < w; ++c) y[c] = a[c];
  };
  Eigen::Index c0 = 0;
  for (; c0 + Tile <= cols; c0 += Tile) {
    Eigen::Index r = 0;
    for (; r + Rows <= rows; r += Rows) {
      T a[Rows][Tile] = {};
      const T* x = X + r * ldx;
      for (Eigen::Index k = 0; k < depth; ++k) {
        const T* m = M + k * ldm + c0;
        for (Eigen::Index q = 0; q < Rows; ++q) {
          const T u = x[q * ldx + k];
          for (Eigen::Index c = 0; c < Tile; ++c) a[q][c] += u * m[c];
        }
      }
      for (Eigen::Index q = 0; q < Rows; ++q) store(a[q], Y + (r + q) * ldy + c0, Tile);
    }
    for (; r < rows; ++r) {
      T a[Tile] = {};
      const T* x = X + r * ldx;
      for (Eigen::Index k = 0; k < depth; ++k) {
        const T* m = M + k * ldm + c0;
        const T u = x[k];
        for (Eigen::Index c = 0; c < Tile; ++c) a[c] += u * m[c];
      }
      store(a, Y + r * ldy + c0, Tile);
    }
  }
  // The columns past the last whole tile (the thin embeddings' few features).
  if (const Eigen::Index w = cols - c0; w > 0)
    for (Eigen::Index r = 0; r < rows; ++r) {
      T a[Tile] = {};
      const T* x = X + r * ldx;
      for (Eigen::Index k = 0; k < depth; ++k) {
        const T* m = M + k * ldm + c0;
        const T u = x[k];
        for (Eigen::Index c = 0; c < w; ++c) a[c] += u * m[c];
      }
      store(a, Y + r * ldy + c0, w);
    }
}

// Y (+)= X A for A [depth, cols], a block of a row-major matrix with row
// stride lda (A may be a column range of a wider weight). Y is resized unless
// accumulating.
template <class T, class MatT>
void times(const MatT& X, const T* A, Eigen::Index lda, Eigen::Index cols, MatT& Y, bool accumulate) {
  if (!accumulate) Y.resize(X.rows(), cols);
  row_products(X.data(), X.rows(), X.cols(), X.cols(), A, lda, cols, Y.data(), cols, accumulate);
}

// Y (+)= X Wᵀ for W [out, in], a block of a row-major matrix with row stride
// ldw (PyTorch's layout of a Linear weight). Wᵀ is copied once per call into
// this thread's scratch (out·in values, reused from call to call); the
// network keeps its transposed weights instead (EgnnNetwork::pin).
template <class T, class MatT>
void times_transposed(const MatT& X, const T* W, Eigen::Index ldw, Eigen::Index out, MatT& Y, bool accumulate) {
  using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  thread_local RowMat wt;
  const Eigen::Index in = X.cols();
  wt = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>(W, out, in, Eigen::OuterStride<>(ldw)).transpose();
  times(X, wt.data(), out, out, Y, accumulate);
}

}  // namespace enf::detail
