"""`fbtui new`: a project scaffold, from nothing or from a training script read statically (never run)."""
