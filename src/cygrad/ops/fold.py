"""torch.nn.functional's unfold (im2col) and fold (col2im) as ops, on the convolution's backend
kernels: unfold's output is im2col_t's columns in torch's (N, C*kh*kw, L) layout, and each op's
backward is the other's kernel (col2im_t adds in ascending kernel offset per pixel). A sample's
columns have the same bits alone or in any batch. Arguments arrive checked
(cygrad/nn/_functional_vision.py).
"""

import numpy as np

from .. import backend as B
from . import Op


def _cols_to_blocks(cols, n, l_blocks):
    """(C*K, N*L) columns -> (N, C*K, L), C-contiguous."""
    return np.ascontiguousarray(cols.reshape(cols.shape[0], n, l_blocks).transpose(1, 0, 2))


def _blocks_to_cols(blocks):
    """(N, C*K, L) -> (C*K, N*L) columns, C-contiguous."""
    n, ck, l_blocks = blocks.shape
    return np.ascontiguousarray(blocks.transpose(1, 0, 2)).reshape(ck, n * l_blocks)


class Unfold(Op):
    """y[n, (c, i, j), (oy, ox)] = x[n, c, oy*sh + i*dh - ph, ox*sw + j*dw - pw] (0 outside)

    Params: kernel (kh, kw), stride, padding, dilation (pairs), out_size (OH, OW); x is
    (N, C, H, W).
    """

    rule = "dx = col2im(g): g added back at each block's pixels, kernel offsets in order"
    linear = True

    def _geometry(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    out_size=self.out_size)

    def forward(self, x):
        self.x_shape = x.shape
        cols = B.im2col_t(np.ascontiguousarray(x), *self.kernel, **self._geometry())
        return _cols_to_blocks(cols, x.shape[0], self.out_size[0] * self.out_size[1])

    def backward(self, g):
        dcols = _blocks_to_cols(np.asarray(g))
        return (B.col2im_t(dcols, self.x_shape, *self.kernel, **self._geometry()),)


class Fold(Unfold):
    """y = the (N, C, H, W) image whose pixels sum the block entries of x (N, C*kh*kw, L) that
    unfold would take from them; Params as Unfold's, plus `y_shape` (N, C, H, W)."""

    rule = "dx = im2col(g): each block entry reads its pixel of g"

    def forward(self, x):
        return B.col2im_t(_blocks_to_cols(x), self.y_shape, *self.kernel, **self._geometry())

    def backward(self, g):
        cols = B.im2col_t(np.ascontiguousarray(g), *self.kernel, **self._geometry())
        return (_cols_to_blocks(cols, self.y_shape[0], self.out_size[0] * self.out_size[1]),)
