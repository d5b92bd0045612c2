"""The training container: snapshot → train → evaluate → gate → convert → publish."""
