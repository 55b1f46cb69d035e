"""The screens of `ssmd tui`: one module each, every one a widget with `show(snap, history)`."""
