"""A picture of the shared latent space: test crops, their reconstructions, and images
generated from the 2D and 3D poses of the same examples (training's TensorBoard and
`hpe_jax.evaluate`'s images.png)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hpe_jax import files
from hpe_jax import modalities
from hpe_jax import normalization
from hpe_jax.models import resnet

# Generated images whose 1st-99th percentile range is under this many grey levels are flat.
FLAT_LEVELS = 4


def make_image_generator(model, out_sharding, num_images=8):
  """jit of (variables, batch) -> rows (R, num_images, H, W, 3) uint8: the input crops, then
  images decoded from the posterior mean of every encoder (rgb->rgb reconstructions,
  2d->rgb and 3d->rgb cross-generations); also returns the row labels."""
  sources = [s for s in (modalities.IMAGE, modalities.POSE_2D, modalities.POSE_3D)
             if s in model.encoders]
  labels = ['input'] + [f'{modalities.SHORT_NAMES[s]}->rgb' for s in sources]

  @functools.partial(jax.jit, out_shardings=out_sharding)
  def generate(variables, batch):
    rows = [jnp.round(batch[modalities.IMAGE][:num_images]).astype(jnp.uint8)]  # [0, 255]
    for source in sources:
      mean, _ = model.apply(variables, normalization.model_input(batch, source)[:num_images],
                            source, False, method=model.encode)
      image = model.apply(variables, mean, modalities.IMAGE, False, method=model.decode)
      rows.append(resnet.denormalize_image(image))
    return jnp.stack(rows)

  return generate, labels


def image_grid(rows):
  """(R, N, H, W, 3) uint8 -> one (R*H, N*W, 3) picture, rows top to bottom."""
  r, n, h, w, c = rows.shape
  return rows.transpose(0, 2, 1, 3, 4).reshape(r * h, n * w, c)


def stretched(images, flat_levels=FLAT_LEVELS):
  """Generated images (N, H, W, 3) uint8 with each one's contrast stretched to the full range
  (its 1st to 99th percentile to 0 to 255): a decoder early in training gives faint images
  near the mean crop, whose structure this shows. Also returns, per image, whether it is
  flat (a range under `flat_levels` grey levels: nothing to show, left as it is)."""
  images = np.asarray(images, np.float32)
  low, high = np.percentile(images, [1, 99], axis=(1, 2, 3), keepdims=True)
  flat = (high - low < flat_levels)[:, 0, 0, 0]
  out = np.clip((images - low) / np.maximum(high - low, 1e-6) * 255.0, 0, 255)
  out = np.where(flat[:, None, None, None], images, out)
  return np.round(out).astype(np.uint8), flat


def save_image_grid(path, rows, labels):
  """The picture of `make_image_generator` as a PNG with its row labels: the input crops as
  they are, each generated image contrast-stretched (`stretched`); a row whose images are all
  flat says so in its label."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  num_rows, num_images = rows.shape[:2]
  fig, axes = plt.subplots(num_rows, num_images, figsize=(1.4 * num_images, 1.5 * num_rows),
                           squeeze=False)
  for i in range(num_rows):
    row, label = rows[i], labels[i]
    if i > 0:
      row, flat = stretched(row)
      label += '\n(flat)' if flat.all() else '\n(stretched)'
    for j in range(num_images):
      axes[i, j].imshow(row[j])
      axes[i, j].set_xticks([])
      axes[i, j].set_yticks([])
    axes[i, 0].set_ylabel(label, fontsize=9)
  fig.suptitle('Test crops (top), their reconstructions and images generated from their 2D/3D '
               'poses;\ngenerated images contrast-stretched each (early in training they are '
               'faint, near the mean crop)', fontsize=9)
  fig.tight_layout()
  with files.staged([path]) as tmps:
    fig.savefig(tmps[path], dpi=100, format='png')
  plt.close(fig)
