"""Images: base -> environment -> project layers, tagged by a hash of their inputs, built on any host."""
