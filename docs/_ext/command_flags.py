"""Sphinx directive `command-flags`: a command's flags, as its `--helpfull` prints them.

    ```{command-flags} hpe_jax.predict
    ```

runs `python -m hpe_jax.predict --helpfull` and shows the flags of the command itself and of
the hpe_jax / tfds_h36m modules it imports, so a command's page never drifts from its code.
A command that cannot print its help fails the build.
"""

import os
import subprocess
import sys

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

_OWN_PREFIXES = ('hpe_jax', 'tfds_h36m')


def _is_section(line):
  return bool(line) and not line.startswith(' ') and line.endswith(':')


def flag_lines(help_text):
  """The flags of the command itself (absl heads them with its file's path) and of this
  project's modules it imports (headed by their module names), without the others'."""
  kept, keep = [], False
  for line in help_text.splitlines():
    if _is_section(line):
      own_file = line.endswith('.py:')
      keep = own_file or line.startswith(_OWN_PREFIXES)
      if keep and not own_file:
        kept += ['', line]
      continue
    if keep:
      kept.append(line)
  return kept


def command_help(module):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', JAX_PLATFORMS='cpu')
  done = subprocess.run([sys.executable, '-m', module, '--helpfull'], capture_output=True,
                        text=True, env=env, timeout=300, check=False)
  # absl's --helpfull exits with status 1 after printing.
  if done.returncode not in (0, 1) or 'flags:' not in done.stdout:
    raise RuntimeError(f'{module} --helpfull failed (exit {done.returncode}): '
                       f'{done.stderr.strip()[-300:]}')
  return done.stdout


class CommandFlags(SphinxDirective):
  required_arguments = 1
  has_content = False

  def run(self):
    module = self.arguments[0]
    try:
      lines = flag_lines(command_help(module))
    except (RuntimeError, subprocess.TimeoutExpired) as error:
      raise self.error(str(error)) from error
    text = '\n'.join(lines).strip('\n')
    block = nodes.literal_block(text, text)
    block['language'] = 'text'
    return [block]


def setup(app):
  app.add_directive('command-flags', CommandFlags)
  return {'parallel_read_safe': True, 'parallel_write_safe': True}
