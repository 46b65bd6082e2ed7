"""What a motion capture take shows: the action labels of the `mocap` datasets.

Motion capture sets have no shared action list, so the `mocap` builder labels each take with
one of a few broad kinds of motion (`ACTIONS`), read from its file name (Bandai Namco's
names hold the motion: `dataset-2_walk-turn-left_active_001.bvh`) or from the description
of the take in an index file beside the BVH files (CMU's `cmu-mocap-index-text.txt` or
`CMU-INDEX.md`: lines such as `02_01  walk`), by the first keyword rule that matches.
"""

import os
import re

ACTIONS = ('walk', 'run', 'jump', 'dance', 'sports', 'fight', 'gestures', 'acrobatics',
           'everyday', 'other')
# (action, keywords): the first rule whose keyword occurs in the description, as a word or
# one of its inflections (`_word`), wins.
_RULES = (
    ('dance', ('dance', 'salsa', 'ballet', 'waltz', 'charleston', 'lambada', 'indian')),
    ('fight', ('punch', 'kick', 'slash', 'box', 'fight', 'martial', 'karate', 'sword',
               'swordplay')),
    ('sports', ('basketball', 'soccer', 'golf', 'dribble', 'baseball', 'tennis', 'football',
                'swim', 'bowling', 'frisbee')),
    ('acrobatics', ('climb', 'swing', 'hang', 'cartwheel', 'flip', 'acrobat', 'handstand',
                    'tai chi', 'yoga', 'stretch', 'gymnast')),
    ('jump', ('jump', 'hop', 'hopscotch', 'leap', 'leapfrog', 'skip')),
    ('run', ('run', 'jog', 'dash', 'sprint')),
    ('walk', ('walk', 'stride', 'stroll', 'march', 'step')),
    ('gestures', ('wave', 'bow', 'bye', 'byebye', 'guide', 'respond', 'call', 'raise', 'point',
                  'salute', 'gesture', 'clap', 'express', 'story', 'nod', 'shrug')),
    ('everyday', ('sit', 'stand', 'drink', 'eat', 'sweep', 'wash', 'reach', 'pick', 'lift',
                  'carry', 'open', 'push', 'pull', 'lean', 'lie', 'bend', 'look', 'turn')),
)
INDEX_FILES = ('cmu-mocap-index-text.txt', 'CMU-INDEX.md')
_INDEX_LINE = re.compile(r'^\s*(\d+_\d+)\s+(.+?)\s*$')


def _word(keyword):
  """A regex of the keyword as a word or one of its inflections (walks, walked, walking,
  stepping, boxer; dancing, danced), never a longer word it merely starts ('stepstool' is
  no step, 'kickball' no kick)."""
  k = re.escape(keyword)
  forms = [k + re.escape(keyword[-1]) + '?(?:s|es|ed|er|ers|ing)']
  if keyword.endswith('e'):
    forms += [re.escape(keyword[:-1]) + '(?:ing|er|ers)', k + 'd']
  return re.compile(rf'\b(?:{k}|{"|".join(forms)})\b')


_CAMEL_OR_DIGITS = re.compile(r'(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])')
_PATTERNS = tuple((action, tuple(_word(k) for k in keywords)) for action, keywords in _RULES)


def action_of(description):
  """The index in ACTIONS of a take's description or file name ('other' when no rule fits)."""
  text = _CAMEL_OR_DIGITS.sub(' ', description).lower().replace('_', ' ').replace('-', ' ')
  for action, patterns in _PATTERNS:
    if any(p.search(text) for p in patterns):
      return ACTIONS.index(action)
  return ACTIONS.index('other')


def walk(folder):
  """(folder, sorted file names) of `folder` and every folder under it, in sorted order,
  following symbolic links (each real folder once, so a link loop ends)."""
  seen = set()
  for root, dirs, names in os.walk(folder, followlinks=True):
    real = os.path.realpath(root)
    if real in seen:
      dirs[:] = []
      continue
    seen.add(real)
    dirs.sort()
    yield root, sorted(names)


def read_index(folder):
  """{take: description} of the CMU index files found anywhere under `folder` ({} if none):
  take names as in the BVH file names ('02_01')."""
  descriptions = {}
  for root, names in walk(folder):
    for name in names:
      if name in INDEX_FILES:
        with open(os.path.join(root, name), encoding='utf-8', errors='replace') as f:
          for line in f:
            match = _INDEX_LINE.match(line)
            if match:
              descriptions[match.group(1)] = match.group(2)
  return descriptions
