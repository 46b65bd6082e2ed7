"""Writes coco_keypoints.json: a COCO-17 keypoints file for trying `hpe_jax.predict`.

The frames are one test sequence of the synthetic default (S9, Walking 1, camera
54138969). The twelve limb keypoints and the nose are the sequence's 2D joints
(Human3.6M's 'Neck' joint is its nose); the eyes and ears, which Human3.6M lacks,
are placed across the head perpendicular to the nose-to-head line, so that
`inference.keypoints.coco_to_h36m` gives back the head joint exactly.
Confidences are 0.9, except frame 5's, 0.2 (below predict's default --min_confidence of
0.3, so that frame comes out flagged as low-confidence).

  python docs/examples/make_coco_keypoints.py --data_dir=data
"""

import json
import os

from absl import app
from absl import flags
import numpy as np

from hpe_jax import input_pipeline
from hpe_jax.inference import keypoints as keypoints_lib
from tfds_h36m import skeleton

_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir with h36m_synthetic/default.')


def coco_from_h36m(pose_2d):
  """(N, 17, 2) H36M-17 px -> (N, 17, 2) COCO-17 px (face keypoints placed around the head)."""
  joint = lambda name: pose_2d[:, skeleton.JOINT_NAMES.index(name)]
  nose, head = joint('Neck'), joint('Head')
  eyes_mid = (head + nose) / 2  # coco_to_h36m: head = face centre + (eyes - nose)
  up = head - nose
  length = np.linalg.norm(up, axis=-1, keepdims=True)
  lateral = np.stack([-up[:, 1], up[:, 0]], axis=-1) / np.maximum(length, 1e-6)
  # Sign: the person's left eye lies on the side of the left shoulder.
  side = np.sign(np.sum((joint('LShoulder') - joint('RShoulder')) * lateral, axis=-1,
                        keepdims=True))
  lateral = lateral * np.where(side == 0, 1, side)
  points = {
      'nose': nose, 'left_eye': eyes_mid + 0.3 * length * lateral,
      'right_eye': eyes_mid - 0.3 * length * lateral,
      'left_ear': eyes_mid + 0.7 * length * lateral,
      'right_ear': eyes_mid - 0.7 * length * lateral}
  for side_name, h36m_side in (('left', 'L'), ('right', 'R')):
    for coco, h36m in (('shoulder', 'Shoulder'), ('elbow', 'Elbow'), ('wrist', 'Wrist'),
                       ('hip', 'Hip'), ('knee', 'Knee'), ('ankle', 'Ankle')):
      points[f'{side_name}_{coco}'] = joint(h36m_side + h36m)
  return np.stack([points[name] for name in keypoints_lib.COCO_JOINT_NAMES], axis=1)


def main(argv):
  del argv
  builder = input_pipeline.get_builder('h36m_synthetic/default', _DATA_DIR.value)
  arrays = input_pipeline.load_pose_arrays(builder, 'test', process_index=0, process_count=1)
  ds = builder.as_dataset(split='test', shuffle_files=False)
  subjects = np.array([ex['subject'].numpy().decode() for ex in ds.map(
      lambda ex: {'subject': ex['subject']})])
  pick = ((subjects == 'S9') & (arrays['action'] == skeleton.ACTIONS.index('Walking'))
          & (arrays['subaction'] == 1) & (arrays['camera_index'] == 0))
  order = np.argsort(arrays['frame'][pick])
  pose_2d = arrays['pose_2d'][pick][order]
  coco = coco_from_h36m(pose_2d)
  confidences = np.full(coco.shape[:2], 0.9)
  confidences[5] = 0.2
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'coco_keypoints.json')
  with open(path, 'w') as f:
    json.dump({'keypoints': np.round(coco, 2).tolist(),
               'confidences': confidences.tolist(),
               'frames': arrays['frame'][pick][order].tolist(),
               'source': 'h36m_synthetic/default test split, S9 Walking 1, camera 54138969 '
                         '(synthetic: not Human3.6M data)'}, f)
  print(f'Wrote {len(coco)} frames to {path}')


if __name__ == '__main__':
  app.run(main)
