"""Sphinx configuration of the hpe_jax documentation (MyST Markdown pages, autodoc API)."""

import os
import sys

sys.path.insert(0, os.path.abspath('..'))
sys.path.insert(0, os.path.abspath('_ext'))

project = 'hpe_jax'
author = 'hpe_jax authors'
copyright = '2026, hpe_jax authors'  # pylint: disable=redefined-builtin

extensions = [
    'myst_parser',
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
    'command_flags',
]
source_suffix = {'.md': 'markdown'}
root_doc = 'index'
exclude_patterns = ['_build', '_ext', 'examples', 'images']

myst_enable_extensions = ['colon_fence', 'deflist']
myst_heading_anchors = 4
suppress_warnings = ['myst.header']

autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
autodoc_default_options = {'members': True, 'undoc-members': False}
# Heavy or optional dependencies the API pages need not import to document them.
autodoc_mock_imports = ['onnxruntime', 'onnx', 'jax2onnx']
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = 'sphinx_book_theme'
html_title = 'hpe_jax'
html_theme_options = {
    'show_toc_level': 2,
    'navigation_with_keys': False,
}
