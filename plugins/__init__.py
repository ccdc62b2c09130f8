"""Built-in agency plugins. Each registers through the `lienthong.plugins` entry points like any other."""
