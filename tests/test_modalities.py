"""Pairs, their names and groups, and the pair schedules."""

from conftest import load_config
from hpe_jax import modalities

PAIRS = ('rgb->3d', 'rgb->rgb', '2d->3d', '3d->3d', '2d->2d')


def test_a_pair_has_one_name_tag_and_metric_key():
  pair = modalities.Pair('pose_2d', 'pose_3d')
  assert (pair.name, pair.tag, pair.metric_key('kl')) == ('2d->3d', '2d_to_3d',
                                                          'pose_2d_to_pose_3d_kl')
  assert modalities.Pair('image', 'image').name == 'rgb->rgb'
  config = load_config('crossmodal', 'tiny')
  assert [p.name for p in modalities.pairs_to_3d(config)] == ['rgb->3d', '2d->3d', '3d->3d']
  assert modalities.modality_shape(config, 'image') == (32, 32, 3)
  assert modalities.uses_images(config) and not modalities.uses_images(load_config())


def test_schedules_visit_the_configured_pairs_in_order():
  config = load_config('crossmodal', 'tiny')
  n = len(config.pairs)
  groups = modalities.groups(config)
  visited = [groups[modalities.scheduled_group(config, step, 7)][0].name
             for step in range(2 * n)]
  assert visited == list(PAIRS) * 2
  config.pair_schedule = 'per_epoch'
  visited = [modalities.groups(config)[modalities.scheduled_group(config, s, 3)][0].name
             for s in range(3 * n)]
  assert visited == [name for name in PAIRS for _ in range(3)]
  config.pair_schedule = 'sum'
  assert [[p.name for p in g] for g in modalities.groups(config)] == [list(PAIRS)]
  assert {modalities.scheduled_group(config, s, 3) for s in range(20)} == {0}
