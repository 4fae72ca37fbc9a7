"""The convolution and pooling ops (torch.nn.functional's conv1d/conv2d and the pools), forward
and backward side by side, and the pooling windows' geometry.

Every product goes through the backend's exact gemm: an output element is one multiply-add
chain over its group's (channel, kernel row, kernel column) in ascending order, so identical
filters give identical outputs and gradients, and a sample's output has the same bits alone or
in any batch. The arguments arrive checked (cygrad/nn/_functional_conv.py).
"""

import numpy as np

from .. import backend as B
from . import Op

# Bytes of patches (im2col's columns) one product takes at most: a batch whose patches fit
# makes one wide product (small images would make narrow ones), its patches kept for the
# backward; a larger one runs in chunks of as many images as fit (one image at least), so that
# the patches stay in cache between im2col and the products. Without groups such a forward
# goes image by image through backend.conv_image (no patches array: they are packed straight
# from each image into the product's panels), and so does its weight gradient
# (conv_image_grad). Every path gives the same bits for the output and dx, and dW's elements
# are exact (the same chain for every filter) on each: a chain over the chunks of each chunk's
# k tree, or over the images of each image's (tests/nn/test_conv_pool.py runs them all).
BATCH_BYTES = 1 << 20
# Below this many output positions an image's product is too thin to run alone (a ResNet's
# last stages: 1x1 to 7x7 maps of 256-512 channels, where image by image re-read the weights
# for every image: 32x torch's time at 1x1): such convolutions take their images in chunks of
# patches up to SMALL_MAP_BYTES, each chunk one wide product, and their weight gradient a chain
# over the chunks.
IMAGE_POSITIONS = 64
SMALL_MAP_BYTES = 16 << 20


def images_per_product(n, patch_bytes, positions=IMAGE_POSITIONS):
    """Images whose patches one product takes: all n, or a chunk of them (at least one);
    `positions` (output positions per image) below IMAGE_POSITIONS allow SMALL_MAP_BYTES."""
    budget = BATCH_BYTES if positions >= IMAGE_POSITIONS else max(BATCH_BYTES, SMALL_MAP_BYTES)
    return n if n * patch_bytes <= budget else max(1, budget // max(patch_bytes, 1))


class Conv2d(Op):
    """y[n, o] = b[o] + sum over c in o's group of W[o, c] (cross-correlation) x[n, c]

    Params: stride (sh, sw), padding (top, left), dilation, groups, out_size (OH, OW), and the
    4-D views `x4` (N, C, H, W) and `w4` (O, C/groups, kh, kw) of the inputs (a 1-D or unbatched
    convolution is this one on views) and the output's shape `y_shape`. With the patches of x as
    columns, cols (C*kh*kw, P) per image or (C*kh*kw, N*P) for the batch, group g's outputs are
    W_g @ cols_g, one exact product per group.
    """
    node = "ConvolutionBackward0"  # torch's grad_fn name

    rule = "dW = g @ cols.T;  db = g summed;  dx = col2im(W.T @ g)  (per group)"
    saves = (0, 1)

    def decompose(self, x, w, b=None):
        """The convolution as recorded ops, unfold then one product per group (backward with
        create_graph=True differentiates this: ops/higher.py)."""
        from ..tensor import apply
        from .fold import Unfold
        from .shape import cat

        o, cg, kh, kw = self.w4
        cols = apply(Unfold, x.reshape(self.x4), kernel=(kh, kw), stride=self.stride,
                     padding=self.padding, dilation=self.dilation, out_size=self.out_size)
        w2 = w.reshape(o, cg * kh * kw)
        og, k = o // self.groups, cg * kh * kw
        parts = [w2[i * og:(i + 1) * og] @ cols[:, i * k:(i + 1) * k] for i in range(self.groups)]
        y = parts[0] if self.groups == 1 else cat(parts, 1)
        if b is not None:
            y = y + b.reshape(1, o, 1)
        return y.reshape(self.y_shape)

    def _geometry(self):
        return self.stride, self.padding, self.dilation, self.out_size

    def forward(self, x, w, b=None):
        self.x_shape, self.w_shape = x.shape, w.shape
        x = self.x = x.reshape(self.x4)
        o, cg, kh, kw = self.w4
        w2 = self.w2 = w.reshape(o, cg * kh * kw)
        n = x.shape[0]
        p = self.out_size[0] * self.out_size[1]
        geometry = self._geometry()
        m = self.chunk = max(1, images_per_product(n, w2.shape[1] * p * x.itemsize, p))
        self.by_image = self.groups == 1 and m < n and p >= IMAGE_POSITIONS
        if self.by_image:  # image by image, the patches packed from each
            self.cols = None
            y = np.empty((n, o, p), x.dtype)
            B.conv_image(x, w2, b, y, kh, kw, *geometry)
        elif m < n:  # chunk by chunk (an image alone writes straight into the output)
            self.cols = None
            y = np.empty((n, o, p), x.dtype)
            for i in range(0, n, m):
                k = min(m, n - i)
                cols = B.im2col_t(x[i:i + k], kh, kw, *geometry)
                if k == 1:
                    for rows, ks in self._groups():
                        B.gemm_into(w2[rows], cols[ks], y[i, rows])
                    if b is not None:
                        B.add_channel_bias(y[i:i + 1], b)
                    continue
                planes = np.empty((o, k * p), x.dtype)
                for rows, ks in self._groups():
                    B.gemm_into(w2[rows], cols[ks], planes[rows])
                y[i:i + k] = B.planes_to_images(planes, b, k, p)
        else:  # the batch as one wide product, then moved to image layout
            cols = self.cols = B.im2col_t(x, kh, kw, *geometry)
            planes = np.empty((o, n * p), x.dtype)
            for rows, ks in self._groups():
                B.gemm_into(w2[rows], cols[ks], planes[rows])
            y = B.planes_to_images(planes, b, n, p)
        return y.reshape(self.y_shape)

    def _groups(self):
        """(rows of W and of the output, rows of the patches) of each group."""
        o, cg, kh, kw = self.w4
        og, kg = o // self.groups, cg * kh * kw
        return [(slice(g * og, (g + 1) * og), slice(g * kg, (g + 1) * kg))
                for g in range(self.groups)]

    def backward(self, g):
        needs, x, w2 = self.needs, self.x, self.w2
        n, c, h, wd = x.shape
        o, cg, kh, kw = self.w4
        p = self.out_size[0] * self.out_size[1]
        g3 = np.ascontiguousarray(g.reshape(n, o, p))
        geometry, groups = self._geometry(), self._groups()
        dx = dw = None
        if needs[1]:
            dw = np.empty(w2.shape, w2.dtype)
        if needs[0]:
            dx = np.empty(x.shape, x.dtype)
        if self.cols is None:  # chunk by chunk; dW's chains run on across the chunks
            m = self.chunk
            # without groups dW goes image by image through conv_image_grad (patches from
            # each image; the chain over the images): with each image's dx when chunks hold
            # one image (its g still in cache: conv_image_backward), else all at once
            dw_by_chunks = needs[1] and not self.by_image
            chunks = range(0, n, m) if needs[0] or dw_by_chunks else ()
            if self.by_image and m == 1:
                B.conv_image_backward(x, g3, w2, dw, dx, kh, kw, *geometry)
                chunks = ()
            elif needs[1] and not dw_by_chunks:
                B.conv_image_grad(x, g3, dw, False, kh, kw, *geometry)
            for i in chunks:
                k = min(m, n - i)
                gi = g3[i] if k == 1 else \
                    np.ascontiguousarray(g3[i:i + k].transpose(1, 0, 2)).reshape(o, k * p)
                if dw_by_chunks:
                    cols = B.im2col_t(x[i:i + k], kh, kw, *geometry)
                    for rows, ks in groups:
                        B.gemm_into(gi[rows], cols[ks], dw[rows], trans_b=True,
                                    accumulate=i > 0)
                if needs[0]:
                    dcols = np.empty((c * kh * kw, k * p), x.dtype)
                    for rows, ks in groups:
                        B.gemm_into(w2[rows], gi[rows], dcols[ks], trans_a=True)
                    B.col2im_t(dcols, (k, c, h, wd), kh, kw, *geometry, out=dx[i:i + k])
        else:
            g_rows = np.ascontiguousarray(g3.transpose(1, 0, 2)).reshape(o, n * p)
            if needs[1]:
                for rows, ks in groups:
                    B.gemm_into(g_rows[rows], self.cols[ks], dw[rows], trans_b=True)
            if needs[0]:
                dcols = np.empty((c * kh * kw, n * p), x.dtype)
                for rows, ks in groups:
                    B.gemm_into(w2[rows], g_rows[rows], dcols[ks], trans_a=True)
                B.col2im_t(dcols, x.shape, kh, kw, *geometry, out=dx)
        grads = (None if dx is None else dx.reshape(self.x_shape),
                 None if dw is None else dw.reshape(self.w_shape))
        if len(needs) == 2:
            return grads
        return grads + ((B.channel_sum(g3) if needs[2] else None),)


class Conv1d(Conv2d):
    """conv2d on (N, C, 1, L) views with a (O, C/groups, 1, k) kernel"""


# ---------------------------------------------------------------------- pooling windows

def pool_out_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's output length of a pool: floor (or ceil) of the positions that fit, and with
    ceil_mode no window that would start in the padding after the input."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def pool_windows(size, kernel, stride, padding, dilation, out):
    """(starts, ends, padded counts) of `out` windows along one axis: window o reads
    start, start + dilation, ... below end, clipped to [0, size); the padded count is the
    window's length with the zero padding but not past it (PyTorch's count_include_pad)."""
    first = np.arange(out, dtype=np.int64) * stride - padding
    raw_end = first + (kernel - 1) * dilation + 1
    ends = np.minimum(raw_end, size)
    behind = np.maximum(-first, 0)  # taps before the image: skip whole dilation steps
    starts = np.minimum(first + (behind + dilation - 1) // dilation * dilation, ends)
    padded = np.minimum(first + kernel, size + padding) - first
    return starts, ends, padded


def adaptive_windows(size, out):
    """(starts, ends) of PyTorch's adaptive pooling: [floor(o*size/out), ceil((o+1)*size/out))."""
    o = np.arange(out, dtype=np.int64)
    return o * size // out, -(-(o + 1) * size // out)


# ---------------------------------------------------------------------- pools

class MaxPool2d(Op):
    """y = max over each window; PyTorch's index (flat in the plane) of that maximum

    Params: windows (hs, he, ws, we), steps (dh, dw), plane (H, W), y_shape, and `indices`
    (None, or a list the forward appends its index array to: F.max_pool2d's return_indices).
    x is read as its (P, H, W) planes.
    """
    node = "MaxPool2DWithIndicesBackward0"  # torch's grad_fn name

    rule = "dx = g added at each window's maximum, outputs in ascending order"

    def forward(self, x):
        self.x_shape = x.shape
        out, self.idx = B.max_pool(x.reshape((-1,) + self.plane), *self.windows, *self.steps)
        if self.indices is not None:
            self.indices.append(self.idx.reshape(self.y_shape))
        return out.reshape(self.y_shape)

    def backward(self, g):
        idx = self.idx
        dx = B.max_pool_backward(g.reshape(idx.shape), idx, (idx.shape[0],) + self.plane)
        return (dx.reshape(self.x_shape),)

    def select(self, gg):
        """gg at each window's maximum (the transpose of backward: ops/higher.py)."""
        idx = self.idx.reshape(self.idx.shape[0], -1)
        flat = np.ascontiguousarray(gg).reshape(idx.shape[0], -1)
        return np.take_along_axis(flat, idx, axis=1).reshape(self.y_shape)


class MaxPool1d(MaxPool2d):
    """max_pool2d on (N*C, 1, L) planes"""
    node = "SqueezeBackward1"  # torch's grad_fn name


class AdaptiveMaxPool2d(MaxPool2d):
    """max_pool2d over adaptive windows"""
    node = "AdaptiveMaxPool2DBackward0"  # torch's grad_fn name


class AvgPool2d(Op):
    """y = (window sum) / divisor, divisor = divisor_override or the window's count

    Params: windows (hs, he, ws, we), counts (hc, wc) (with or without the padding, as
    count_include_pad says), divisor_override (0: none), plane (H, W), y_shape.
    """
    node = "AvgPool2DBackward0"  # torch's grad_fn name

    rule = "dx = g / divisor added over each window, outputs in ascending order"
    linear = True

    def forward(self, x):
        self.x_shape = x.shape
        out = B.avg_pool(x.reshape((-1,) + self.plane), *self.windows, *self.counts,
                         self.divisor_override)
        self.planes = out.shape[0]
        return out.reshape(self.y_shape)

    def backward(self, g):
        g = g.reshape(self.planes, len(self.windows[0]), len(self.windows[2]))
        dx = B.avg_pool_backward(g, (self.planes,) + self.plane, *self.windows, *self.counts,
                                 self.divisor_override)
        return (dx.reshape(self.x_shape),)


class AvgPool1d(AvgPool2d):
    """avg_pool2d on (N*C, 1, L) planes"""
    node = "SqueezeBackward1"  # torch's grad_fn name


class AdaptiveAvgPool2d(AvgPool2d):
    """avg_pool2d over adaptive windows, each divided by its own size"""
    node = "AdaptiveAvgPool2DBackward0"  # torch's grad_fn name
