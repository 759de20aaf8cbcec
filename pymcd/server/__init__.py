"""The Twisted layer: one Protocol per connection, factories and listeners. Thin: no command logic."""
