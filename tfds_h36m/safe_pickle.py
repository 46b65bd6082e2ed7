"""Reads pickled data (Human3.6M .npz dicts, 3DPW .pkl files) without running code.

`np.load(allow_pickle=True)` unpickles whatever a file holds, and a crafted file
can run code that way. This reader parses the .npy member itself and unpickles
with a whitelist: containers, strings and numbers are pickle opcodes, and the
only globals admitted are those NumPy needs to rebuild arrays and dtypes.
"""

import pickle
import zipfile

import numpy as np

_ALLOWED_GLOBALS = frozenset({
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('builtins', 'set'),
    ('builtins', 'frozenset'),
    ('builtins', 'complex'),
    ('builtins', 'bytearray'),
    ('_codecs', 'encode'),  # bytes pickled by Python 2-compatible protocols
})


class DataFormatError(ValueError):
  """A file that is not in the expected format; the message names the file."""


class _RestrictedUnpickler(pickle.Unpickler):

  def __init__(self, file, path, encoding='ASCII'):
    super().__init__(file, encoding=encoding)
    self._path = path

  def find_class(self, module, name):
    if (module, name) in _ALLOWED_GLOBALS:
      return super().find_class(module, name)
    raise DataFormatError(
        f'{self._path}: refusing to load the forbidden global {module}.{name} from its '
        'pickled data (only dicts, lists, tuples, strings, numbers and NumPy arrays are '
        'admitted).')


def load_npz_dict(path, key):
  """The object stored under `key` of an .npz (e.g. the dict of data_3d_h36m.npz)."""
  path = str(path)
  try:
    archive = zipfile.ZipFile(path)
  except FileNotFoundError:
    raise
  except (zipfile.BadZipFile, OSError) as e:
    raise DataFormatError(f'{path}: not a valid .npz file (truncated or corrupted?): {e}') from e
  with archive:
    member = f'{key}.npy'
    if member not in archive.namelist():
      keys = [n[:-4] for n in archive.namelist() if n.endswith('.npy')]
      raise DataFormatError(f'{path}: has no key {key!r}; its keys: {keys}')
    try:
      with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
          shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
          shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        if dtype.hasobject:
          array = _RestrictedUnpickler(f, path).load()
        else:
          array = np.frombuffer(f.read(), dtype=dtype).reshape(shape)
    except DataFormatError:
      raise
    except (EOFError, pickle.UnpicklingError, ValueError, zipfile.BadZipFile, OSError) as e:
      raise DataFormatError(f'{path}: cannot read {key!r} (truncated or corrupted?): {e}') from e
  if isinstance(array, np.ndarray) and array.dtype.hasobject and array.shape == ():
    return array.item()
  return array


def load_pickle(path, encoding='latin1'):
  """The object of a pickle file, restricted as above; latin1 reads Python 2 pickles
  (3DPW's sequence files) with their NumPy arrays."""
  path = str(path)
  with open(path, 'rb') as f:
    try:
      return _RestrictedUnpickler(f, path, encoding=encoding).load()
    except DataFormatError:
      raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError, MemoryError) as e:
      raise DataFormatError(f'{path}: not a readable pickle (truncated or corrupted?): '
                            f'{type(e).__name__}: {e}') from e
