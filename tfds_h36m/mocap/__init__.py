"""Motion capture (BVH files) as lifting data: `rigs` maps a rig's joints to Human3.6M-17,
`virtual_cameras` films the motion, `motions` labels it, `mocap_dataset_builder` builds it."""
