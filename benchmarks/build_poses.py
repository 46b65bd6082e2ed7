"""Time and memory of building `h36m/poses` from full-size preprocessed files.

Writes a synthetic stand-in in the layout of the real preprocessed files
(`data_3d_h36m.npz` in metres with 32 joints, `data_2d_h36m_gt.npz` in pixels)
with Human3.6M's size (about 390k training and 136k test frames, 4 cameras each,
so 1.5M+ training examples), then builds `h36m/poses` from it in a child
process while sampling that process's resident memory. Prints JSON lines.

  python -m benchmarks.build_poses --out_dir=/tmp/h36m_bench [--scale=1.0]
"""

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np

from tfds_h36m import cameras
from tfds_h36m import skeleton
from tfds_h36m.synthetic import motion

_OUT_DIR = flags.DEFINE_string('out_dir', '/tmp/h36m_bench', 'Where to write files and records.')
_SCALE = flags.DEFINE_float('scale', 1.0, 'Fraction of the full dataset size.')
_FRAMES = {'train': 389_938, 'test': 135_836}  # Human3.6M frames per split at 50 fps


def write_standin(manual_dir, scale):
  """data_3d_h36m.npz and data_2d_h36m_gt.npz of Human3.6M's size."""
  positions_3d, positions_2d = {}, {}
  rng = np.random.default_rng(0)
  for split, subjects in (('train', skeleton.TRAIN_SUBJECTS), ('test', skeleton.TEST_SUBJECTS)):
    names = [f'{a} {s}' for a in skeleton.ACTIONS for s in (1, 2)]
    frames_per_sequence = int(_FRAMES[split] * scale / (len(subjects) * len(names)))
    for subject in subjects:
      bones = motion.subject_bone_lengths(subject)
      positions_3d[subject], positions_2d[subject] = {}, {}
      for name in names:
        action, _ = skeleton.parse_sequence_name(name)
        pose_17 = motion.generate_sequence(rng, bones, action, frames_per_sequence)
        raw = np.repeat(pose_17[:, :1], skeleton.NUM_RAW_JOINTS, axis=1)
        raw[:, list(skeleton.RAW_TO_17)] = pose_17
        positions_3d[subject][name] = (raw / 1000.0).astype(np.float32)
        positions_2d[subject][name] = [
            cameras.project(cameras.world_to_camera(pose_17, cam), cam).astype(np.float32)
            for cam in cameras.load_cameras(subject)]
  os.makedirs(manual_dir, exist_ok=True)
  np.savez(os.path.join(manual_dir, 'data_3d_h36m.npz'), positions_3d=positions_3d)
  np.savez(os.path.join(manual_dir, 'data_2d_h36m_gt.npz'), positions_2d=positions_2d,
           metadata={'layout_name': 'h36m', 'num_joints': 17,
                     'keypoints_symmetry': [list(skeleton.LEFT_JOINTS),
                                            list(skeleton.RIGHT_JOINTS)]})


def _rss_mb(pid):
  try:
    with open(f'/proc/{pid}/status') as f:
      for line in f:
        if line.startswith('VmRSS:'):
          return int(line.split()[1]) / 1024
  except FileNotFoundError:
    pass
  return None


def main(argv):
  del argv
  manual_dir = os.path.join(_OUT_DIR.value, 'manual')
  data_dir = os.path.join(_OUT_DIR.value, 'tfds')
  start = time.time()
  write_standin(manual_dir, _SCALE.value)
  print(json.dumps({'stage': 'write_standin', 'seconds': round(time.time() - start, 1),
                    'scale': _SCALE.value}), flush=True)
  command = [sys.executable, '-m', 'tfds_h36m.prepare', '--dataset=h36m/poses',
             f'--manual_dir={manual_dir}', f'--data_dir={data_dir}']
  start = time.time()
  child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
  samples = []
  while child.poll() is None:
    rss = _rss_mb(child.pid)
    if rss is not None:
      samples.append((time.time() - start, rss))
    time.sleep(1.0)
  output = child.stdout.read()
  seconds = time.time() - start
  if child.returncode:
    raise SystemExit(f'build failed ({child.returncode}):\n{output}')
  print(output, file=sys.stderr)
  rss = np.array([s[1] for s in samples])
  quarters = [float(np.max(q)) for q in np.array_split(rss, 4)] if len(rss) >= 4 else []
  print(json.dumps({
      'stage': 'tfds_build_h36m_poses', 'seconds': round(seconds, 1),
      'peak_rss_mb': round(float(rss.max()), 0),
      'peak_rss_mb_per_quarter_of_build': [round(q) for q in quarters],
      'cpu_count': os.cpu_count()}), flush=True)


if __name__ == '__main__':
  app.run(main)
