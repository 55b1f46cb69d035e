"""The key dialogs: confirm a revoke, ask what key to create, show a new secret once."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from ssmd.meta.clients import Client

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 74; height: auto; border: thick $warning; padding: 0 1;
                     background: $surface; }}
{name} Horizontal {{ height: auto; align-horizontal: right; }}
{name} Button {{ margin: 0 1; min-width: 10; }}
"""


class Confirm(ModalScreen[bool]):
    """Yes/no; Escape or n is no, so a stray key never revokes anything."""

    DEFAULT_CSS = DIALOG_CSS.format(name="Confirm")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, id="question")
            with Horizontal():
                yield Button("Revoke (y)", variant="error", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class CreateKey(ModalScreen[tuple[str, list[str]] | None]):
    """Client and scopes for a new key; the result goes to `ssmd key create`'s code."""

    DEFAULT_CSS = DIALOG_CSS.format(name="CreateKey")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, clients: list[Client]) -> None:
        super().__init__()
        self.clients = clients

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("New API key — client:")
            yield Select(
                [(f"{c.id} ({', '.join(c.scopes)})", c.id) for c in self.clients],
                allow_blank=False,
                id="client",
            )
            yield Label("Scopes (space-separated; empty = all the client's):")
            yield Input(placeholder="e.g. read stream", id="scopes")
            with Horizontal():
                yield Button("Create", variant="primary", id="create")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#client", Select).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "create":
            self._submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def _submit(self) -> None:
        client = self.query_one("#client", Select).value
        scopes = self.query_one("#scopes", Input).value.replace(",", " ").split()
        self.dismiss((str(client), scopes))

    def action_cancel(self) -> None:
        self.dismiss(None)


class Secret(ModalScreen[None]):
    """The new token, once: only its hash is stored, so closing this loses it."""

    DEFAULT_CSS = DIALOG_CSS.format(name="Secret")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter", "close", "close")]

    def __init__(self, token: str, about: str) -> None:
        super().__init__()
        self.token = token
        self.about = about

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.about)
            yield Static(self.token, id="token")
            yield Static("Shown only now: copy it (select with the mouse, or Shift+drag).")
            with Horizontal():
                yield Button("Close (Enter)", id="close")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, _event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
