"""CMU and Bandai Namco as one training set (`mocap/cmu_bandai`): the folder of links it is
built from, its build, and the run of the packaged config on it. Shared by
experiments.combined_capture (its comparison) and experiments.pretrained_lifter (the
packaged `cmu_bandai`); no flags, so either can import it.

Each CMU training take is linked `cmu_views` times under names of their own, so that the
build's two virtual cameras per file give it the 16 views per take of mocap/cmu (and as many
new bodies) while Bandai Namco's takes keep the two of mocap/bandai. Bandai Namco's test actors
are left out of the folder (mocap/bandai tests them); CMU's test people are linked once, as
the build's test split. Anything trained on it is non-commercial: Bandai Namco's capture is
CC BY-NC 4.0.
"""

import json
import os
import shutil

from experiments import runs
from tfds_h36m.mocap import mocap_dataset_builder as mocap_builder
from tfds_h36m.mocap import motions

BUILD = 'mocap/cmu_bandai'
WORKDIR = 'cmu_bandai_graph'
BANDAI_TEST = ('bandai2', 'bandai4')  # mocap/bandai's test actors
CMU_VIEWS = 8
CONFIG = {'name': 'cmu_bandai', 'rig': '', 'subjects': 'folder',
          'test_subjects': list(mocap_builder.CMU_TEST_SUBJECTS), 'cameras_per_sequence': 2}
LICENCE = ('CC BY-NC 4.0, non-commercial use only (trained on the Bandai Namco Research '
           'Motiondataset and the CMU Graphics Lab Motion Capture Database)')


def run(epochs=4):
  """The packaged config on the combined build; 4 epochs are about the steps of the packaged
  `cmu`'s 10 epochs of mocap/cmu."""
  return runs.Run('CMU and Bandai Namco', 'configs/mocap.py', dataset=BUILD,
                  num_epochs=epochs, eval_every_epochs=max(1, epochs // 2))


def link_takes(cmu_dir, bandai_dir, link_dir, cmu_views=CMU_VIEWS):
  """Makes `link_dir` anew: a folder per person ('cmu05', 'bandai3') of links to their BVH
  files, CMU's training takes each `cmu_views` times ('05_01.bvh', '05_01_view1.bvh', ...),
  and CMU's index of takes; {person: links}."""
  _remove_links(link_dir)
  os.makedirs(link_dir)
  counts = {}
  for rule, folder in (('cmu', cmu_dir), ('bandai', bandai_dir)):
    for path in mocap_builder.bvh_files(folder):
      person, take = mocap_builder.subject_of(path, rule)
      if person in BANDAI_TEST:
        continue
      copies = 1 if person in mocap_builder.CMU_TEST_SUBJECTS or rule == 'bandai' else cmu_views
      os.makedirs(os.path.join(link_dir, person), exist_ok=True)
      for k in range(copies):
        name = take + (f'_view{k}' if k else '') + '.bvh'
        os.symlink(os.path.abspath(path), os.path.join(link_dir, person, name))
      counts[person] = counts.get(person, 0) + copies
  for root, names in motions.walk(cmu_dir):
    for name in set(names) & set(motions.INDEX_FILES):
      shutil.copy(os.path.join(root, name), link_dir)
  return counts


def _remove_links(link_dir):
  """Removes a folder that `link_takes` made; ValueError (one line) if it holds anything
  else, so that a mistaken --link_dir never deletes capture files."""
  if not os.path.lexists(link_dir):
    return
  if os.path.islink(link_dir) or not os.path.isdir(link_dir):
    raise ValueError(f'{link_dir} exists and is not a folder: give a new folder for the links.')
  for root, names in motions.walk(link_dir):
    for name in names:
      path = os.path.join(root, name)
      if not (os.path.islink(path) or name in motions.INDEX_FILES):
        raise ValueError(f'{link_dir} exists and holds {path}, which is not a link: give a '
                         'new folder for the links.')
  shutil.rmtree(link_dir)


def prepare_command(link_dir, data_dir):
  return ['-m', 'tfds_h36m.prepare', '--dataset=mocap', f'--manual_dir={link_dir}',
          f'--data_dir={data_dir}', f'--config={json.dumps(CONFIG)}']


def build(cmu_dir, bandai_dir, link_dir, data_dir):
  """Links the takes and builds mocap/cmu_bandai in `data_dir` unless it is built (its log
  beside the links); {person: links}."""
  counts = link_takes(cmu_dir, bandai_dir, link_dir)
  if not os.path.exists(os.path.join(data_dir, BUILD)):
    runs.run_command(prepare_command(link_dir, data_dir), link_dir.rstrip('/') + '.log')
  return counts
