"""Image sources and Beam stages: folders of PNG/JPEG, decode checks, resizing."""
