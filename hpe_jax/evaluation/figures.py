"""Evaluation and inference pictures (matplotlib, Agg, no pyplot state).

Poses are root-relative camera-frame mm (x right, y down, z forward). They
are drawn with the camera's 'up' (-y) up and depth (z) going into the
picture, so a standing person is upright with the head on top. Every
function returns a `matplotlib.figure.Figure`; `save_png` writes it and
`to_array` gives the RGB pixels (for TensorBoard).
"""

import sys
import textwrap
import warnings

import matplotlib
from matplotlib import animation
from matplotlib.backends import backend_agg
from matplotlib import figure as mpl_figure
from matplotlib import lines as mpl_lines
from matplotlib import ticker
import numpy as np

from hpe_jax import files
from tfds_h36m import skeleton

DPI = 100
PRED_LEFT = '#08306b'  # dark blue: prediction, left limbs (and spine, head)
PRED_RIGHT = '#6baed6'  # light blue: prediction, right limbs
GROUND_TRUTH = '#8c8c8c'
ERROR_TEXT = '#d62728'
VIEW = dict(elev=12.0, azim=-72.0)


def new_figure(width_px, height_px):
  """A Figure of the given size in px with an Agg canvas."""
  fig = mpl_figure.Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
  backend_agg.FigureCanvasAgg(fig)
  return fig


def save_png(fig, path):
  """Writes the figure as PNG at its own size; returns the path."""
  with files.staged([path]) as tmps:
    fig.savefig(tmps[path], dpi=DPI, format='png')
  return path


def to_array(fig):
  """The rendered figure as uint8 RGB (H, W, 3)."""
  fig.canvas.draw()
  return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _plot_coords(pose_mm):
  """Camera frame (x right, y down, z forward) -> plot axes (x, depth z, up = -y)."""
  pose_mm = np.asarray(pose_mm)
  return pose_mm[..., 0], pose_mm[..., 2], -pose_mm[..., 1]


def _bone_color(child):
  return PRED_RIGHT if child in skeleton.RIGHT_JOINTS else PRED_LEFT


def draw_skeleton(ax, pose_mm, *, ground_truth=False, linewidth=2.0, alpha=1.0):
  """Draws a (17, 3) pose: a prediction in blue (right limbs lighter) or ground truth in grey."""
  xs, ys, zs = _plot_coords(pose_mm)
  for parent, child in skeleton.BONES:
    color = GROUND_TRUTH if ground_truth else _bone_color(child)
    ax.plot([xs[parent], xs[child]], [ys[parent], ys[child]], [zs[parent], zs[child]],
            color=color, linewidth=linewidth, alpha=alpha, solid_capstyle='round')


def _shared_limit(*poses):
  """Half-width (mm) of a cube around the root holding every pose."""
  return 1.05 * max(float(np.max(np.abs(p))) for p in poses)


def _setup_axes(ax, limit, *, labels=True, fontsize=6, zoom=1.0):
  ax.set_xlim(-limit, limit)
  ax.set_ylim(-limit, limit)
  ax.set_zlim(-limit, limit)
  ax.set_box_aspect((1, 1, 1), zoom=zoom)
  ax.view_init(**VIEW)
  for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
    axis.set_major_locator(ticker.MaxNLocator(3))
  ax.tick_params(labelsize=fontsize - 1, pad=-2)
  if labels:
    ax.set_xlabel('x (mm)', fontsize=fontsize, labelpad=-6)
    ax.set_ylabel('depth z (mm)', fontsize=fontsize, labelpad=-6)
    ax.set_zlabel('up -y (mm)', fontsize=fontsize, labelpad=-6)


def _legend_handles(with_ground_truth=True, what='prediction'):
  handles = [mpl_lines.Line2D([], [], color=PRED_LEFT, lw=2, label=f'{what}, left + spine'),
             mpl_lines.Line2D([], [], color=PRED_RIGHT, lw=2, label=f'{what}, right')]
  if with_ground_truth:
    handles.append(mpl_lines.Line2D([], [], color=GROUND_TRUTH, lw=2, label='ground truth'))
  return handles


def prediction_grid(pred_mm, target_mm, titles, *, columns=5, panel_px=340):
  """Predicted (blue) and ground-truth (grey) skeletons, each joint's error in mm in red.

  pred_mm, target_mm: (N, 17, 3) root-relative mm; titles: N strings. All
  panels share one cube of axis limits so poses keep their proportions.
  """
  pred_mm, target_mm = np.asarray(pred_mm), np.asarray(target_mm)
  n = len(pred_mm)
  rows = -(-n // columns)
  fig = new_figure(columns * panel_px, rows * panel_px + 60)
  limit = _shared_limit(pred_mm, target_mm)
  errors = np.linalg.norm(pred_mm - target_mm, axis=-1)
  for i in range(n):
    ax = fig.add_subplot(rows, columns, i + 1, projection='3d')
    draw_skeleton(ax, target_mm[i], ground_truth=True, linewidth=1.5)
    draw_skeleton(ax, pred_mm[i])
    for j, (x, y, z) in enumerate(zip(*_plot_coords(pred_mm[i]))):
      if j != skeleton.ROOT:  # root-relative: the root's error is 0 by construction
        ax.text(x, y, z, f' {errors[i, j]:.0f}', color=ERROR_TEXT, fontsize=5.5)
    _setup_axes(ax, limit, labels=i == (rows - 1) * columns, zoom=1.3)
    ax.set_title(titles[i], fontsize=8, pad=0)
  fig.legend(handles=_legend_handles(), loc='lower center', ncol=3, fontsize=10,
             frameon=False)
  fig.suptitle('Predictions (blue) vs ground truth (grey); red: joint error in mm',
               fontsize=12)
  fig.subplots_adjust(left=0.01, right=0.99, bottom=0.04, top=0.95, wspace=0.05, hspace=0.12)
  return fig


def error_distribution(errors_mm, actions, action_names, *, title='Per-pose MPJPE by action'):
  """Horizontal box plot of per-pose errors (mm) of each action present; action ids index
  `action_names` (the dataset's, `skeleton.action_names`)."""
  errors_mm, actions = np.asarray(errors_mm), np.asarray(actions)
  present = [a for a in range(len(action_names)) if np.any(actions == a)]
  fig = new_figure(900, 120 + 34 * len(present))
  ax = fig.add_subplot(1, 1, 1)
  data = [errors_mm[actions == a] for a in present]
  labels = [f'{action_names[a]} (n={len(d)})' for a, d in zip(present, data)]
  ax.boxplot(data, orientation='horizontal', tick_labels=labels, showmeans=True,
             flierprops=dict(markersize=2, alpha=0.5),
             meanprops=dict(marker='D', markersize=4, markerfacecolor='white'))
  ax.invert_yaxis()
  ax.set_xlabel('MPJPE (mm); box: quartiles, line: median, diamond: mean')
  ax.set_title(title)
  ax.grid(axis='x', alpha=0.3)
  fig.tight_layout()
  return fig


def _import_umap():
  """The umap package without TensorFlow: umap's __init__ imports its parametric variant,
  which imports TensorFlow where it is installed (seconds, and TensorFlow's C++ start-up
  notes on the console) and is not used here; blocked, umap skips it."""
  blocked = 'tensorflow' not in sys.modules
  if blocked:
    sys.modules['tensorflow'] = None  # `import tensorflow` raises ImportError
  try:
    import umap  # pylint: disable=g-import-not-at-top  # slow import (numba)
  finally:
    if blocked:
      del sys.modules['tensorflow']
  return umap


def umap_embeddings(latents, n_neighbors, *, seed=0):
  """2D UMAP embeddings {n: (N, 2)} of latent vectors for each n_neighbors (clipped to N - 1)."""
  umap = _import_umap()
  latents = np.asarray(latents, np.float32)
  out = {}
  for n in n_neighbors:
    n = min(int(n), len(latents) - 1)
    if n >= 2 and n not in out:
      with warnings.catch_warnings():
        # Small n_neighbors leave the k-NN graph in pieces; UMAP still lays each piece out.
        warnings.filterwarnings('ignore', message='Graph is not fully connected')
        # UMAP's spectral start retries with another solver by itself.
        warnings.filterwarnings('ignore', message='ARPACK has failed')
        out[n] = umap.UMAP(n_neighbors=n, random_state=seed, n_jobs=1).fit_transform(latents)
  return out


def latent_scatter(embeddings, labels, names, *, title, legend_title):
  """One panel per UMAP embedding, points coloured by label (names[label]) with a legend."""
  labels = np.asarray(labels)
  present = [i for i in range(len(names)) if np.any(labels == i)]
  cmap = matplotlib.colormaps['tab20' if len(names) > 10 else 'tab10']
  panels = len(embeddings)
  marker_size = float(np.clip(3000 / len(labels), 2, 20))
  # At least 900 px wide so the title and an 8-column legend fit beside a single panel.
  columns = min(len(present), 8 if panels > 1 else 5)
  fig = new_figure(max(380 * panels, 900), 520)
  for k, (n, emb) in enumerate(sorted(embeddings.items())):
    ax = fig.add_subplot(1, panels, k + 1)
    for i in present:
      sel = labels == i
      ax.scatter(emb[sel, 0], emb[sel, 1], s=marker_size, color=cmap(i % cmap.N), label=names[i],
                 alpha=0.8, linewidths=0)
    ax.set_title(f'n_neighbors = {n}', fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
  handles, legend_labels = fig.axes[0].get_legend_handles_labels()
  fig.legend(handles, legend_labels, loc='lower center', ncol=columns,
             fontsize=9, title=legend_title, title_fontsize=9,
             markerscale=max(8 / marker_size, 1), frameon=False)
  fig.suptitle(title, fontsize=12)
  fig.subplots_adjust(left=0.02, right=0.98, top=0.88,
                      bottom=0.12 + 0.05 * -(-len(present) // columns), wspace=0.08)
  return fig


def joint_spread(spread_xyz_mm, *, title, caption=''):
  """Grouped bars of the per-joint spread (std over samples, mm) along x, y and depth z,
  under the title and a caption (`hypotheses.spread_caption`: the spread against the
  errors)."""
  spread_xyz_mm = np.asarray(spread_xyz_mm)
  fig = new_figure(1100, 520 if caption else 480)
  ax = fig.add_subplot(1, 1, 1)
  idx = np.arange(skeleton.NUM_JOINTS)
  width = 0.27
  for k, (axis, color) in enumerate(zip(('x', 'y', 'z (depth)'),
                                        ('#9ecae1', '#4292c6', '#08306b'))):
    ax.bar(idx + (k - 1) * width, spread_xyz_mm[:, k], width, label=axis, color=color)
  ax.set_xticks(idx, skeleton.JOINT_NAMES, rotation=45, ha='right')
  ax.set_ylabel('std over samples (mm)')
  ax.set_title(title + ('\n' + textwrap.fill(caption, 115) if caption else ''), fontsize=10)
  ax.legend(title='camera axis')
  ax.grid(axis='y', alpha=0.3)
  fig.tight_layout()
  return fig


def pose_panels(poses_mm, titles, *, hypotheses_mm=None, panel_px=420, what='prediction'):
  """A row of lifted poses (blue), optionally with their sampled hypotheses (thin,
  translucent); `what` the legend calls the poses."""
  poses_mm = np.asarray(poses_mm)
  n = len(poses_mm)
  fig = new_figure(n * panel_px, panel_px + 90)
  everything = [poses_mm] + ([np.asarray(hypotheses_mm)] if hypotheses_mm is not None else [])
  limit = _shared_limit(*everything)
  for i in range(n):
    ax = fig.add_subplot(1, n, i + 1, projection='3d')
    if hypotheses_mm is not None:
      for sample in hypotheses_mm[i]:
        draw_skeleton(ax, sample, linewidth=0.8, alpha=0.25)
    draw_skeleton(ax, poses_mm[i], linewidth=2.5)
    _setup_axes(ax, limit, labels=True, fontsize=7, zoom=1.1)
    ax.set_title(titles[i], fontsize=9)
  handles = _legend_handles(with_ground_truth=False, what=what)
  if hypotheses_mm is not None:
    handles.append(mpl_lines.Line2D([], [], color=PRED_LEFT, lw=0.8, alpha=0.4,
                                    label=f'{np.shape(hypotheses_mm)[1]} sampled hypotheses'))
  fig.legend(handles=handles, loc='lower center', ncol=len(handles), fontsize=9, frameon=False)
  fig.subplots_adjust(left=0.02, right=0.98, bottom=0.1, top=0.93, wspace=0.15)
  return fig


def save_animation(poses_mm, path, *, fps=10, titles=None, size_px=480):
  """Writes an animated GIF of the poses (N, 17, 3) in mm, one frame each (PillowWriter)."""
  poses_mm = np.asarray(poses_mm)
  fig = new_figure(size_px, size_px)
  ax = fig.add_subplot(1, 1, 1, projection='3d')
  limit = _shared_limit(poses_mm)

  def draw(i):
    ax.cla()
    draw_skeleton(ax, poses_mm[i], linewidth=2.5)
    _setup_axes(ax, limit, fontsize=7, zoom=1.1)
    ax.set_title(titles[i] if titles else f'frame {i}', fontsize=9)
    return []

  anim = animation.FuncAnimation(fig, draw, frames=len(poses_mm), blit=False)
  with files.staged([path]) as tmps:
    anim.save(tmps[path], writer=animation.PillowWriter(fps=fps), dpi=DPI)
  return path
