"""The documentation: the Sphinx site builds with warnings as errors, the README stays short,
and the user pages carry no development history."""

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

DOCS = os.path.join(ROOT, 'docs')
# History belongs in docs/measurements.md; the experiments' pages are their scripts' records.
HISTORY_PAGES = ('measurements.md', os.path.join('experiments', ''))
HISTORY_WORDS = re.compile(r'\bcommit [0-9a-f]{7}\b|\bat [0-9a-f]{7}\b|\bissue\b|\bsession\b',
                           re.IGNORECASE)
README_MAX_LINES = 250


def user_pages():
  pages = [os.path.join(ROOT, 'README.md')]
  for folder, _, names in os.walk(DOCS):
    relative = os.path.relpath(folder, DOCS)
    if relative.startswith(('_', 'examples')):
      continue
    for name in names:
      path = os.path.join(folder, name)
      rel = os.path.relpath(path, DOCS)
      if name.endswith('.md') and not rel.startswith(HISTORY_PAGES):
        pages.append(path)
  return pages


def test_sphinx_build_has_no_warnings(tmp_path):
  done = subprocess.run(
      [sys.executable, '-m', 'sphinx', '-E', '-W', '--keep-going', '-q', '-b', 'html', DOCS,
       str(tmp_path / 'html')], capture_output=True, text=True, cwd=ROOT, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  for page in ('index', 'lifting', 'commands/predict', 'api', 'results'):
    assert (tmp_path / 'html' / f'{page}.html').exists(), page
  predict_page = (tmp_path / 'html' / 'commands' / 'predict.html').read_text()
  assert '--focal_length' in predict_page  # the flags come from the command itself


def test_readme_is_short():
  with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
    assert len(f.read().splitlines()) <= README_MAX_LINES


@pytest.mark.parametrize('path', user_pages(), ids=lambda p: os.path.relpath(p, ROOT))
def test_user_pages_carry_no_development_history(path):
  with open(path, encoding='utf-8') as f:
    text = re.sub(r'```.*?```', '', f.read(), flags=re.DOTALL)  # code may say `session`
  found = HISTORY_WORDS.findall(text)
  assert not found, f'{os.path.relpath(path, ROOT)}: {found}'


def test_readme_links_exist():
  with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
    links = re.findall(r'\]\(([^)#]+)(?:#[^)]*)?\)', f.read())
  missing = [link for link in links if not link.startswith('http')
             and not os.path.exists(os.path.join(ROOT, link))]
  assert not missing
