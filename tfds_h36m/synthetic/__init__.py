"""Generator of a synthetic Human3.6M stand-in: skeleton motion and capsule rendering."""
