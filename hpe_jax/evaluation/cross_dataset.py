"""Cross-dataset evaluation: a workdir's 2D->3D lifter on an in-the-wild test set.

  python -m hpe_jax.evaluate --workdir=workdirs/lifting --dataset=mpi_inf_3dhp/test --data_dir=data
  python -m hpe_jax.evaluate --workdir=workdirs/lifting --dataset=pw3d/test --data_dir=data

Reads a split built by the `mpi_inf_3dhp` / `pw3d` builders (docs/in_the_wild.md) as
NumPy, without TensorFlow; completes the 2D poses where the layout lacks H36M joints;
lifts them with `hpe_jax.inference.lifter` (each example's intrinsics move its 2D pose
into the reference camera, as `predict` does); and writes
WORKDIR/eval/<builder>_<split>/summary.json and results.md (temporary file, then
rename): 3D PCK at 150 mm and AUC (%, Mehta et al. 2017), P1 (MPJPE) and P2 (P-MPJPE)
in mm over the joints both layouts have (`joint_valid`), after root alignment at the
pelvis, per activity (MPI-INF-3DHP) or sequence (3DPW) and over all poses, with the
convention stated beside the numbers.
"""

import dataclasses
import json
import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from hpe_jax import config_lib
from hpe_jax import files
from hpe_jax import metrics
from hpe_jax import workdir as workdir_lib
from hpe_jax.inference import layouts
from hpe_jax.inference import lifter as lifter_lib
from hpe_jax.inference import restore as restore_lib
from tfds_h36m import builders  # registers the builders with TFDS
from tfds_h36m import records
from tfds_h36m import skeleton
from tfds_h36m import wild
from tfds_h36m.synthetic import motion

EVAL_DIR = 'eval'
SUMMARY_FILE, RESULTS_FILE = 'summary.json', 'results.md'
_J = {name: i for i, name in enumerate(skeleton.JOINT_NAMES)}
_FLOATS = {'pose_2d': (17, 2), 'pose_3d': (17, 3), 'camera/focal_length': (2,),
           'camera/center': (2,)}
_INTS = ('joint_valid', 'joint_valid_2d', 'activity')  # those the builder has
# Joints 2D layouts may lack, placed on the line from Pelvis through Thorax at Human3.6M's
# mean bone lengths (tfds_h36m/synthetic/motion.py): Neck (nose) 121 mm and Head (top)
# 121 + 115 mm above the Thorax, per 233 + 257 mm of torso.
_BONE = dict(zip([skeleton.JOINT_NAMES[c] for _, c in skeleton.BONES],
                 motion.MEAN_BONE_LENGTHS_MM.tolist()))
_TORSO_MM = _BONE['Spine'] + _BONE['Thorax']
_ABOVE_THORAX = {'Neck': _BONE['Neck'] / _TORSO_MM,
                 'Head': (_BONE['Neck'] + _BONE['Head']) / _TORSO_MM}
_DERIVATIONS = {  # in the order they are computed
    'Pelvis': 'Pelvis = mid(LHip, RHip)', 'Thorax': 'Thorax = mid(LShoulder, RShoulder)',
    'Spine': 'Spine = mid(Pelvis, Thorax)',
    **{name: f'{name} = Thorax + {fraction:.3f} (Thorax - Pelvis)'
       for name, fraction in _ABOVE_THORAX.items()}}


class UnknownDataset(ValueError):
  """A --dataset that is none of TEST_SETS."""


class DatasetError(ValueError):
  """A test set that is not built, or that cannot be evaluated as built."""


@dataclasses.dataclass(frozen=True)
class TestSet:
  """An in-the-wild split and what its numbers mean."""
  tfds_name: str  # tfds.builder name
  split: str
  prepare: str  # --dataset of `python -m tfds_h36m.prepare`
  manual_dir: str
  layout_2d: tuple  # the 2D layout's joint for each H36M joint, -1 none (tfds_h36m/wild.py)
  derived_2d: tuple  # H36M joints computed from the others (`complete_2d`), not read
  group_by: str  # 'activity' or 'sequence'
  annotation_3d: str
  source_2d: str
  joints_note: str = ''


_MPI_NAME, _PW3D_NAME = builders.WILD_BUILDER_NAMES
_MPI = TestSet(
    f'{_MPI_NAME}/test', 'test', f'{_MPI_NAME}/test', '/path/to/3dhp', wild.MPI_TO_H36M, (),
    'activity',
    'univ_annot3 (the builder\'s pose_3d: scaled to Human3.6M\'s universal skeleton, what the '
    'literature evaluates; the metric annot3 it also stores as pose_3d_annot3 is not used)',
    'annot2: the ground-truth 2D of the annotations (full-image px; TS5-TS6 with their '
    'lens distortion, which the camera conversion ignores)',
    ' (versions of Mehta et al.\'s script count these 17, or 14 without Pelvis, Spine and '
    'Neck (their head): say which when comparing)')


def _pw3d(split):
  return TestSet(
      _PW3D_NAME, split, _PW3D_NAME, '/path/to/3dpw', wild.COCO18_TO_H36M,
      ('Pelvis', 'Thorax', 'Spine', 'Neck', 'Head'), 'sequence',
      'SMPL joints (jointPositions) in the camera frame, mapped to H36M-17; root: the SMPL '
      'pelvis, which sits elsewhere than Human3.6M\'s, as do SMPL\'s hips',
      'poses2d: the OpenPose COCO-18 keypoints 3DPW ships (detections, not ground truth), '
      'mapped to H36M-17; poses missing a 2D joint that is read (confidence 0) are skipped')


TEST_SETS = {_MPI.tfds_name: _MPI,
             **{f'{_PW3D_NAME}/{split}': _pw3d(split) for split in ('test', 'validation', 'train')}}


def test_set(name):
  """The TestSet of a --dataset name; UnknownDataset (one line, the known names) otherwise."""
  if name not in TEST_SETS:
    raise UnknownDataset(f'Unknown dataset {name!r}{config_lib.near_matches(name, TEST_SETS)}; '
                         f'known: {", ".join(TEST_SETS)}.')
  return TEST_SETS[name]


def open_builder(name, data_dir):
  """The prepared builder of TEST_SETS[name]; DatasetError naming the build command if not."""
  spec = test_set(name)
  builder = builders.load(spec.tfds_name, data_dir)
  if not builder.is_prepared():
    raise DatasetError(
        f'Dataset {name} is not built in {data_dir or tfds.core.constants.DATA_DIR}. Build it '
        f'from your copy first: python -m tfds_h36m.prepare --dataset={spec.prepare} '
        f'--manual_dir={spec.manual_dir} --data_dir={data_dir or "~/tensorflow_datasets"} '
        '(see docs/in_the_wild.md).')
  if builder.info.file_format.value != 'array_record':
    raise DatasetError(f'Dataset {name} in {data_dir} is stored as '
                       f'{builder.info.file_format.value}; rebuild it (ArrayRecord, the default) '
                       f'with python -m tfds_h36m.prepare --dataset={spec.prepare}.')
  return builder


def read_examples(builder, split):
  """{field: (N, ...) array} of a split, rows in the records' order: pose_2d px, pose_3d mm,
  camera/focal_length and camera/center px, joint_valid (and joint_valid_2d, activity
  where the builder has them) and sequence (str). Read and parsed with `tfds_h36m.records`:
  no TensorFlow."""
  n = builder.info.splits[split].num_examples
  ints = [k for k in _INTS if k in builder.info.features]
  columns = {k: np.empty((n,) + shape, np.float32) for k, shape in _FLOATS.items()}
  columns.update({k: np.empty((n,) + builder.info.features[k].shape, np.int64) for k in ints})
  columns['sequence'] = np.empty(n, object)
  count = 0
  paths = builder.info.splits[split].filepaths
  for i, serialized in enumerate(records.serialized_examples(paths)):
    feature = records.example_features(serialized)
    for key, shape in _FLOATS.items():
      columns[key][i] = records.float_array(feature[key], shape)
    for key in ints:
      columns[key][i] = np.reshape(feature[key].int64_list.value, columns[key].shape[1:])
    columns['sequence'][i] = feature['sequence'].bytes_list.value[0].decode()
    count = i + 1
  if count != n:
    raise DatasetError(f'{builder.info.full_name} {split}: read {count} examples, the dataset '
                       f'info says {n}.')
  for key in ('joint_valid', 'joint_valid_2d'):
    if key in columns:
      columns[key] = columns[key].astype(bool)
  columns['sequence'] = columns['sequence'].astype(str)
  return columns


def complete_2d(pose_2d, derived):
  """H36M-17 2D poses (N, 17, 2) px with the joints named in `derived` computed from the
  others; returns (poses, the derivation as text).

  Pelvis, Thorax and Spine as `predict` derives them for every 2D layout
  (`layouts.torso_joints`: the hips' and the shoulders' midpoints, Spine midway; a
  detector's own neck point is not used); Neck (nose) and Head (top), where no face
  keypoints are stored, along Pelvis -> Thorax at Human3.6M's mean bone lengths.
  """
  kp = np.array(pose_2d, np.float64)
  unknown = set(derived) - set(_DERIVATIONS)
  if unknown:
    raise DatasetError(f'Cannot derive the 2D joints {sorted(unknown)}.')
  derived = [name for name in _DERIVATIONS if name in set(derived)]  # Thorax before Neck
  if not derived:
    return kp, 'none: every H36M joint is in the 2D annotation'
  get = lambda name: kp[:, _J[name]]
  torso = layouts.torso_joints(get('LHip'), get('RHip'), get('LShoulder'), get('RShoulder'))
  for name in derived:
    if name in torso:
      kp[:, _J[name]] = torso[name]
    else:  # above the Thorax
      kp[:, _J[name]] = get('Thorax') + _ABOVE_THORAX[name] * (get('Thorax') - get('Pelvis'))
  text = '; '.join(_DERIVATIONS[name] for name in derived)
  text += ' (torso joints as hpe_jax.inference.layouts.torso_joints derives them for every '
  text += '2D layout, a detector\'s own neck point unused'
  if set(derived) & set(_ABOVE_THORAX):
    text += '; Neck and Head along the torso at Human3.6M\'s mean bone lengths: the build '
    text += 'keeps no face keypoints'
  return kp, text + ')'


def _usable(examples, spec):
  """(N,) bool: every 2D joint read, not derived, is there (joint_valid_2d, where stored)."""
  if 'joint_valid_2d' not in examples:
    return np.ones(len(examples['pose_2d']), bool)
  read = (np.asarray(spec.layout_2d) >= 0) & ~np.isin(skeleton.JOINT_NAMES, spec.derived_2d)
  return np.all(examples['joint_valid_2d'] | ~read, axis=-1)


def _joint_mask(examples):
  """The (17,) joint_valid every example shares (both builders store one per layout)."""
  valid = examples['joint_valid']
  if not np.all(valid == valid[:1]):
    raise DatasetError('joint_valid differs between examples: expected one per layout.')
  return valid[0]


def _groups(builder, examples, spec):
  """(labels (N,) str, row names in table order)."""
  if spec.group_by == 'activity':
    names = builder.info.features['activity'].names
    labels = np.asarray(names)[examples['activity']]
    return labels, [n for n in names if n in set(labels)]
  labels = examples['sequence']
  return labels, sorted(set(labels))


def grouped_metrics(pred, target, mask, labels, names):
  """Metrics of poses (N, 17, 3) mm over the (17,) joint mask, after root alignment:
  (rows [{name, count, pck_150, auc (%), mpjpe, p_mpjpe (mm)}] of the poses whose label
  (N,) is each of `names`, the same over all poses). Per-pose errors are computed once."""
  errors = np.asarray(metrics.per_joint_error(pred, target))
  p1 = np.asarray(metrics.masked_mpjpe(pred, target, mask))
  p2 = np.asarray(metrics.masked_p_mpjpe(pred, target, mask))

  def summarise(rows):
    return {'count': int(np.sum(rows)),
            'pck_150': float(metrics.pck_curve(errors[rows], mask,
                                               (metrics.PCK_THRESHOLD_MM,))[0]),
            'auc': float(np.mean(metrics.pck_curve(errors[rows], mask))),
            'mpjpe': float(np.mean(p1[rows])), 'p_mpjpe': float(np.mean(p2[rows]))}

  return ([dict(name=name, **summarise(labels == name)) for name in names],
          summarise(np.ones(len(pred), bool)))


def _subsample(rows, max_poses, seed):
  if not max_poses or max_poses >= len(rows):
    return rows
  return np.sort(np.random.default_rng(seed).choice(rows, max_poses, replace=False))


@dataclasses.dataclass
class LiftingInputs:
  """What the model lifts: rows (M,) of the split's examples, their completed 2D poses."""
  examples: dict  # read_examples' columns, every example
  rows: np.ndarray  # (M,) the examples evaluated
  keypoints: np.ndarray  # (M, 17, 2) px, H36M-17, derived joints filled in
  derivation: str
  poses_note: str


def lifting_inputs(builder, spec, max_poses=0, seed=0):
  """Reads the split; keeps the poses with every 2D joint of the layout (a `max_poses`
  random subset of them if set) and completes them (`complete_2d`)."""
  logging.info('Reading %s split %r from %s.', spec.tfds_name, spec.split, builder.data_dir)
  examples = read_examples(builder, spec.split)
  usable = _usable(examples, spec)
  rows = _subsample(np.flatnonzero(usable), max_poses, seed)
  if not len(rows):
    raise DatasetError(f'No example of {builder.info.full_name} {spec.split} has all the 2D '
                       'joints the evaluation reads (joint_valid_2d).')
  keypoints, derivation = complete_2d(examples['pose_2d'][rows], spec.derived_2d)
  note = (f'{len(rows)} poses evaluated of {len(usable)} examples; '
          f'{int(np.sum(~usable))} skipped for a missing 2D joint')
  if len(rows) < np.sum(usable):
    note += f'; a fixed random subset of {len(rows)} (--max_poses, seed {seed})'
  return LiftingInputs(examples, rows, keypoints, derivation, note)


def _convention(spec, mask, inputs, trained_on):
  joints = ', '.join(n for n, m in zip(skeleton.JOINT_NAMES, mask) if m)
  return {
      'annotation_3d': spec.annotation_3d,
      'joints': f'{int(np.sum(mask))} joints both layouts have (joint_valid): {joints}'
                + spec.joints_note,
      'root_alignment': 'prediction and ground truth relative to their pelvis (joint 0); '
                        'its error is then 0, and it counts where joint_valid marks it',
      'metrics': 'PCK: % of counted joints under 150 mm; AUC: mean PCK over 0, 5, ..., 150 mm '
                 '(strictly under, as Mehta et al.\'s script); P1 = MPJPE, P2 = P-MPJPE '
                 '(similarity Procrustes on the counted joints), mm; rows per '
                 f'{spec.group_by}, All pooled over every pose',
      'source_2d': spec.source_2d,
      'derived_2d': inputs.derivation,
      'camera': 'each example\'s intrinsics move its 2D pose into the reference camera (mean '
                'of the 4 Human3.6M cameras), as hpe_jax.predict does; lens distortion is '
                'not modelled',
      'training': f'the model was trained on {trained_on}, not on this dataset'
                  + (' (synthetic: not Human3.6M)' if 'synthetic' in trained_on else ''),
      'poses': inputs.poses_note,
  }


def _markdown(summary):
  lines = [summary['header'], '']
  lines += [f'- {k.replace("_", " ")}: {v}' for k, v in summary['convention'].items()]
  lines += ['', f'| {summary["group_by"].capitalize()} | Poses | PCK@150 (%) | AUC (%) | '
                'P1 (mm) | P2 (mm) |', '|---|---:|---:|---:|---:|---:|']
  for row in summary['rows'] + [dict(summary['overall'], name='**All**')]:
    lines.append(f'| {row["name"]} | {row["count"]} | {row["pck_150"]:.1f} | {row["auc"]:.1f} '
                 f'| {row["mpjpe"]:.1f} | {row["p_mpjpe"]:.1f} |')
  return '\n'.join(lines) + '\n'


def run(workdir, name, *, data_dir=None, checkpoint='best', max_poses=0, seed=0):
  """Evaluates the 2D->3D pair of `workdir` on the test set `name` (a TEST_SETS key, built
  in `data_dir`, default the workdir's config.data_dir); writes summary.json and results.md
  into WORKDIR/eval/<builder>_<split>/, prints the results; returns the summary."""
  spec = test_set(name)
  data_dir = data_dir or restore_lib.load_config(workdir).get('data_dir') or None
  builder = open_builder(name, data_dir)
  inputs = lifting_inputs(builder, spec, max_poses, seed)
  lifter = lifter_lib.load_lifter(workdir, checkpoint)
  examples, rows = inputs.examples, inputs.rows
  pred = lifter.lift(inputs.keypoints, focal_length=examples['camera/focal_length'][rows],
                     center=examples['camera/center'][rows]).poses_mm
  mask = _joint_mask(examples)
  labels, names = _groups(builder, examples, spec)
  table, overall = grouped_metrics(pred, examples['pose_3d'][rows], mask, labels[rows], names)
  summary = {
      'header': f'Cross-dataset evaluation of {lifter.workdir}, checkpoint step {lifter.step} '
                f'({checkpoint}), 2D->3D, on {name}: {len(rows)} poses of '
                f'{builder.info.full_name}.',
      'workdir': lifter.workdir, 'step': lifter.step, 'checkpoint': str(checkpoint),
      'dataset': name, 'data_dir': str(builder.data_dir), 'trained_on': lifter.config.dataset,
      'flip_test': bool(lifter.config.flip_test), 'num_examples': len(examples['pose_2d']),
      'num_poses': len(rows), 'max_poses': int(max_poses), 'group_by': spec.group_by,
      'convention': _convention(spec, mask, inputs, lifter.config.dataset),
      'rows': table, 'overall': overall}
  eval_dir = files.inside(lifter.workdir, EVAL_DIR)
  out_dir = os.path.join(eval_dir, f'{spec.tfds_name.split("/")[0]}_{spec.split}')
  text = _markdown(summary)
  os.makedirs(eval_dir, exist_ok=True)
  with workdir_lib.eval_lock(lifter.workdir), files.staged_dir(
      eval_dir, os.path.basename(out_dir)) as tmp:
    files.write_atomic(os.path.join(tmp, RESULTS_FILE), text)
    files.write_atomic(os.path.join(tmp, SUMMARY_FILE), json.dumps(summary, indent=1,
                                                                  allow_nan=False))
  print(text, flush=True)
  logging.info('Wrote %s and %s to %s.', SUMMARY_FILE, RESULTS_FILE, out_dir)
  return summary
