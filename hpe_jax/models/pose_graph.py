"""Graph encoders and decoders of 2D and 3D poses over the skeleton (Modulated GCN).

A graph convolution in the manner of SemGCN (Zhao et al. 2019) and Modulated GCN
(Zou & Tang 2021): every joint's features go through one shared weight matrix
(one for the joint itself, one for its neighbours), each joint modulated by its
own learned vector, then mixed over an affinity matrix: the skeleton's bones with
self-loops, symmetrically normalised, plus a learned symmetric matrix that can
link joints no bone connects (a wrist and the head). Residual blocks, batch norm,
dropout and activations are those of the MLP (`pose_mlp`).

The graph: the model's poses hold the 16 non-root joints (skeleton joints 1-16,
the root, Pelvis, is the origin of the 3D poses and carries nothing). Rather than
a root node with no input, the root is left out and its three children (RHip,
LHip, Spine) are connected among themselves, so the 16-joint graph stays
connected as the pelvis connects them in the body.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from hpe_jax.models import pose_mlp
from tfds_h36m import skeleton


def skeleton_adjacency():
  """(16, 16) 0/1 adjacency of the non-root joints as nested tuples (hashable, for a
  module field): the bones not at the root, and the root's children linked pairwise.
  No self-loops."""
  n = skeleton.NUM_JOINTS - 1
  adjacency = np.zeros((n, n), np.float32)
  root_children = [c - 1 for c, p in enumerate(skeleton.PARENTS) if p == skeleton.ROOT]
  for child, parent in enumerate(skeleton.PARENTS):
    if parent > skeleton.ROOT:
      adjacency[child - 1, parent - 1] = adjacency[parent - 1, child - 1] = 1.0
  for i in root_children:
    for j in root_children:
      adjacency[i, j] = float(i != j)
  return tuple(map(tuple, adjacency.tolist()))


def normalized_adjacency(adjacency):
  """D^-1/2 (A + I) D^-1/2 of a 0/1 adjacency A (Kipf & Welling 2017): self-loops so a
  joint keeps its own features, and degree normalisation so every joint's mix has a
  comparable scale whatever its number of neighbours."""
  a = np.asarray(adjacency, np.float32) + np.eye(len(adjacency), dtype=np.float32)
  d = 1.0 / np.sqrt(a.sum(axis=1))
  return (a * d[:, None] * d[None, :]).astype(np.float32)


class ModulatedGraphConv(nn.Module):
  """(N, J, C) -> (N, J, features): a modulated graph convolution.

  out_i = a_ii m_i * (W_self x_i) + sum_{j != i} a_ij m_j * (W_nbr x_j) (+ bias), with
  a = normalized_adjacency(adjacency) + (Q + Q^T) / 2, m_j joint j's modulation vector
  (ones at start; it modulates the shared weights' transform of joint j's features, as in
  Modulated GCN's code) and Q a learned (J, J) matrix (zeros at start: the layer starts as
  a plain skeleton GCN). The normalisation is of the skeleton part only: a learned matrix's
  row sums may be near zero or negative, and dividing by them would blow up.
  """
  features: int
  adjacency: Any  # (J, J) 0/1 nested tuples (or array), no self-loops
  use_bias: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    num_joints = x.shape[-2]
    # One matmul for both weights: a single 2F-wide product is cheaper than two.
    h = nn.Dense(2 * self.features, use_bias=False, dtype=self.dtype, name='weights')(x)
    h_self, h_nbr = jnp.split(h, 2, axis=-1)
    modulation = self.param('modulation', nn.initializers.ones,
                            (num_joints, self.features), jnp.float32)
    q = self.param('affinity', nn.initializers.zeros, (num_joints, num_joints), jnp.float32)
    a = jnp.asarray(normalized_adjacency(self.adjacency)) + 0.5 * (q + q.T)
    eye = jnp.eye(num_joints, dtype=jnp.float32)
    m = modulation.astype(self.dtype)
    out = (jnp.diagonal(a)[:, None].astype(self.dtype) * (m * h_self)
           + jnp.einsum('ij,njf->nif', (a * (1.0 - eye)).astype(self.dtype), m * h_nbr))
    if self.use_bias:
      out = out + self.param('bias', nn.initializers.zeros, (self.features,),
                             jnp.float32).astype(self.dtype)
    return out


class GraphLayer(nn.Module):
  """ModulatedGraphConv - BatchNorm - activation - Dropout (pose_mlp.DenseLayer's order);
  batch norm per feature over the batch and the joints, as SemGCN's."""
  features: int
  adjacency: Any
  dropout: float
  use_batch_norm: bool
  activation: str
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train):
    x = ModulatedGraphConv(self.features, self.adjacency, use_bias=not self.use_batch_norm,
                           dtype=self.dtype)(x)
    return pose_mlp.after_linear(self, x, train)


class GraphResidualBlock(nn.Module):
  """Two GraphLayers with a skip connection."""
  features: int
  adjacency: Any
  dropout: float
  use_batch_norm: bool
  activation: str
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train):
    layer = lambda: GraphLayer(self.features, self.adjacency, self.dropout,
                               self.use_batch_norm, self.activation, self.dtype)
    return x + layer()(layer()(x, train), train)


class PoseGraph(nn.Module):
  """Shared options of graph pose encoders and decoders: `hidden` features per joint,
  `num_blocks` residual blocks of two graph layers, over `skeleton_adjacency()`."""
  hidden: int = 128
  num_blocks: int = 2
  dropout: float = 0.2
  use_batch_norm: bool = True
  activation: str = 'relu'
  dtype: Any = jnp.float32

  def layer_args(self):
    return (self.hidden, skeleton_adjacency(), self.dropout, self.use_batch_norm,
            self.activation, self.dtype)

  def blocks(self, x, train):
    for _ in range(self.num_blocks):
      x = GraphResidualBlock(*self.layer_args())(x, train)
    return x


class GraphPoseEncoder(PoseGraph):
  """Pose (N, 16, D) -> mean and log-variance (N, latent_dim) of a Gaussian, in f32, as
  pose_mlp.PoseEncoder returns them: a graph layer to `hidden` per joint, the residual
  blocks, then one Dense from all the joints' features to both moments."""
  latent_dim: int = 100

  @nn.compact
  def __call__(self, pose, train):
    x = GraphLayer(*self.layer_args())(pose.astype(self.dtype), train)
    x = self.blocks(x, train)
    gaussian = nn.Dense(2 * self.latent_dim, dtype=jnp.float32, name='gaussian')(
        x.reshape(x.shape[0], -1))
    mean, logvar = jnp.split(gaussian, 2, axis=-1)
    return mean, logvar


class GraphPoseDecoder(PoseGraph):
  """Latent (N, latent_dim) -> pose (N, num_joints, joint_dim), in f32: a DenseLayer from
  the latent to `hidden` features per joint, the residual graph blocks, then a per-joint
  linear head (each joint its own weights: joints differ in range and direction)."""
  num_joints: int = 16
  joint_dim: int = 3

  @nn.compact
  def __call__(self, z, train):
    x = pose_mlp.DenseLayer(self.num_joints * self.hidden, self.dropout, self.use_batch_norm,
                            self.activation, self.dtype)(z.astype(self.dtype), train)
    x = self.blocks(x.reshape(z.shape[0], self.num_joints, self.hidden), train)
    kernel = self.param('out_kernel', nn.initializers.lecun_normal(batch_axis=(0,)),
                        (self.num_joints, self.hidden, self.joint_dim), jnp.float32)
    bias = self.param('out_bias', nn.initializers.zeros, (self.num_joints, self.joint_dim),
                      jnp.float32)
    return jnp.einsum('njh,jhd->njd', x.astype(jnp.float32), kernel) + bias
