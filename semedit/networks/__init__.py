"""Pure ``nn.Module`` networks with explicit constructor arguments."""
