"""The Add/Edit connection dialog and the keyring-choice prompt.

`ConnectionDialog.ask(parent, ...)` and `KeyringChoice.ask(parent, message)` are classmethods so
tests can patch them instead of driving modal loops. The dialog never touches the keyring: it
only collects what the operator typed; the page stores it in a background task.

Every field comes from what the connector registry declares for the chosen system: its regions,
its secrets (with the operator's names for them), its required settings (shown with the rest)
and its other settings (under "More settings", each showing its default). Tab moves through
the fields in the order they are shown. "Test" asks the platform whether what is typed works,
in a background task, before anything is saved (workflows.connections.check_unsaved).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

CUSTOM_REGION = "custom"


@dataclass
class ConnectionInput:
    """What the operator entered. Empty secret values on edit mean "keep the stored one"."""

    name: str
    system: str
    region: str
    custom_url: str
    secrets: dict[str, str] = field(default_factory=dict)
    original_name: str | None = None  # set when editing
    settings: dict[str, Any] = field(default_factory=dict)  # a blank field: None (the default)
    session_only: bool = False  # no keyring: the operator chose to keep keys in memory


@dataclass(frozen=True)
class SystemChoice:
    key: str
    label: str
    secret_fields: tuple[str, ...]
    secret_labels: tuple[str, ...]
    regions: dict[str, str]
    default_region: str = ""
    settings: tuple[Any, ...] = ()  # connectors.base.Setting
    abilities: str = ""


def available_systems() -> list[SystemChoice]:
    from optout_desk.connectors.registry import connectable

    return [
        SystemChoice(info.id, info.label, tuple(info.secret_fields),
                     tuple(info.secret_labels), dict(info.regions), info.default_region,
                     tuple(info.settings), info.abilities())
        for info in connectable()
    ]


class SecretField(QLineEdit):
    """A masked key field with an eye toggle to show what was typed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEchoMode(QLineEdit.EchoMode.Password)
        self.toggle = QAction(self)
        self.toggle.setCheckable(True)
        self.toggle.setToolTip("Show the key")
        self.toggle.setIcon(self._eye_icon())
        self.toggle.toggled.connect(self._toggled)
        self.addAction(self.toggle, QLineEdit.ActionPosition.TrailingPosition)

    def _eye_icon(self) -> QIcon:
        icon = QIcon.fromTheme("view-reveal-symbolic")
        if icon.isNull():
            icon = self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogContentsView)
        return icon

    @Slot(bool)
    def _toggled(self, shown: bool) -> None:
        self.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.toggle.setToolTip("Hide the key" if shown else "Show the key")


class ConnectionDialog(QDialog):
    def __init__(
        self,
        parent: QWidget | None,
        systems: list[SystemChoice],
        existing: ConnectionInput | None = None,
        keyring_note: str = "",
        session_only_choice: bool = False,
    ) -> None:
        super().__init__(parent)
        self.systems = systems
        self.existing = existing
        self.setWindowTitle("Edit connection" if existing else "Add a connection")
        self.setMinimumWidth(480)

        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. checkmarket-eu")
        self.system = QComboBox()
        for choice in systems:
            self.system.addItem(choice.label, choice.key)
        self.region = QComboBox()
        self.custom_url = QLineEdit()
        self.custom_url.setPlaceholderText("https://… (or http://127.0.0.1:… for the sandbox)")
        self.secret_fields: dict[str, SecretField] = {}
        self.form = QFormLayout()
        self.form.addRow("Name", self.name)
        self.form.addRow("System", self.system)
        self.form.addRow("Region", self.region)
        self.form.addRow("Base URL", self.custom_url)
        self.abilities = QLabel()
        self.abilities.setWordWrap(True)
        self.abilities.setObjectName("abilities")
        self.secrets_form = QFormLayout()
        self.required_form = QFormLayout()
        self.more = QGroupBox("More settings")
        self.more.setCheckable(True)
        self.more.setChecked(False)
        self.more.toggled.connect(self._more_toggled)
        self.more_body = QWidget()
        self.more_form = QFormLayout(self.more_body)
        more_layout = QVBoxLayout(self.more)
        more_layout.addWidget(self.more_body)
        self.more_body.hide()
        self.setting_fields: dict[str, QLineEdit] = {}
        self.note = QLabel(keyring_note)
        self.note.setWordWrap(True)
        self.note.setVisible(bool(keyring_note) and not session_only_choice)
        # Without a keyring the one message about it is this choice, made before saving.
        self.session_only = QCheckBox(
            "There is no system keyring: keep these keys for this session only (they are "
            "never written to a file; enter them again next time)")
        self.session_only.setObjectName("sessionOnly")
        self._session_choice = session_only_choice
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c62828;")
        self.error.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.test_button = QPushButton("Test")
        self.test_button.setToolTip("Ask the platform whether these keys work, without saving")
        self.buttons.addButton(self.test_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.test_button.clicked.connect(self.test_entered)
        self.buttons.accepted.connect(self._accept_if_valid)
        self.buttons.rejected.connect(self.reject)
        self.test_result = QLabel()
        self.test_result.setObjectName("testResult")
        self.test_result.setWordWrap(True)
        self.test_result.hide()
        self._test_task: Any = None
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.abilities)
        layout.addLayout(self.secrets_form)
        layout.addLayout(self.required_form)
        layout.addWidget(self.more)
        layout.addWidget(self.note)
        layout.addWidget(self.session_only)
        self.session_only.setVisible(session_only_choice)  # in the layout first: no window
        layout.addWidget(self.error)
        layout.addWidget(self.test_result)
        layout.addWidget(self.buttons)

        self.system.currentIndexChanged.connect(self._system_changed)
        self.region.currentIndexChanged.connect(self._region_changed)
        self._system_changed()
        if existing is not None:
            self.name.setText(existing.name)
            self.name.setReadOnly(True)  # the keys are filed under the name: no renames
            self.name.setToolTip("A connection keeps its name; add a new one to rename.")
            self.system.setCurrentIndex(max(self.system.findData(existing.system), 0))
            index = self.region.findData(existing.region or CUSTOM_REGION)
            self.region.setCurrentIndex(max(index, 0))
            self.custom_url.setText(existing.custom_url)
            for secret in self.secret_fields.values():
                secret.setPlaceholderText("unchanged (type to replace)")
            for name, value in existing.settings.items():
                widget = self.setting_fields.get(name)
                if widget is not None and value is not None:
                    text = ", ".join(value) if isinstance(value, list) else (
                        ("yes" if value else "no") if isinstance(value, bool) else str(value))
                    widget.setText(text)
                    if widget.parent() is self.more_body:
                        self.more.setChecked(True)

    def _label_of(self, field_widget: QWidget) -> str:
        label = self.secrets_form.labelForField(field_widget)
        return label.text() if isinstance(label, QLabel) else ""

    def current_system(self) -> SystemChoice:
        return self.systems[max(self.system.currentIndex(), 0)]

    @Slot()
    def _system_changed(self) -> None:
        choice = self.current_system()
        self.region.blockSignals(True)
        self.region.clear()
        for region, url in choice.regions.items():
            label = "Custom URL" if region == CUSTOM_REGION else f"{region.upper()} — {url}"
            self.region.addItem(label, region)
        self.region.setCurrentIndex(max(self.region.findData(choice.default_region), 0))
        self.region.blockSignals(False)
        while self.secrets_form.rowCount():
            self.secrets_form.removeRow(0)
        self.secret_fields = {}
        for field_name, label in zip(choice.secret_fields, choice.secret_labels, strict=True):
            secret = SecretField()
            secret.setObjectName(f"secret-{field_name}")
            self.secret_fields[field_name] = secret
            self.secrets_form.addRow(label, secret)
        for form in (self.required_form, self.more_form):
            while form.rowCount():
                form.removeRow(0)
        self.setting_fields = {}
        for spec in choice.settings:
            edit = QLineEdit(self.more_body if spec.advanced and not spec.required else None)
            edit.setObjectName(f"setting-{spec.name}")
            default = spec.default
            shown = ", ".join(default) if isinstance(default, list) else (
                ("yes" if default else "no") if isinstance(default, bool) else str(default))
            edit.setPlaceholderText("required" if spec.required else f"default: {shown}")
            edit.setToolTip(spec.help)
            self.setting_fields[spec.name] = edit
            form = self.more_form if spec.advanced and not spec.required else self.required_form
            form.addRow(spec.label, edit)
        self.more.setVisible(self.more_form.rowCount() > 0)
        self.abilities.setText(f"A {choice.label} connection can {choice.abilities}."
                               if choice.abilities else "")
        self._region_changed()
        self._fix_tab_order()

    def tab_chain(self) -> list[QWidget]:
        """The fields in the order they are shown (what Tab walks through)."""
        chain: list[QWidget] = [self.name, self.system, self.region, self.custom_url,
                                *self.secret_fields.values()]
        advanced = [w for w in self.setting_fields.values() if w.parent() is self.more_body]
        chain += [w for w in self.setting_fields.values() if w not in advanced]
        chain.append(self.more)
        chain += advanced
        chain += [self.session_only, self.test_button, *self.buttons.buttons()]
        return [widget for widget in chain if widget.focusPolicy() != Qt.FocusPolicy.NoFocus]

    def _fix_tab_order(self) -> None:
        # Fields made when the system changes come after the buttons in creation order.
        chain = self.tab_chain()
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    @Slot()
    def _region_changed(self) -> None:
        custom = self.region.currentData() == CUSTOM_REGION
        self.custom_url.setEnabled(custom)
        if not custom:
            self.custom_url.clear()

    @Slot(bool)
    def _more_toggled(self, shown: bool) -> None:
        self.more_body.setVisible(shown)

    def value(self) -> ConnectionInput:
        return ConnectionInput(
            name=self.name.text().strip(),
            system=self.current_system().key,
            region=str(self.region.currentData() or ""),
            custom_url=self.custom_url.text().strip(),
            secrets={k: w.text().strip() for k, w in self.secret_fields.items() if w.text()},
            original_name=self.existing.name if self.existing else None,
            settings={name: (w.text().strip() or None) for name, w in self.setting_fields.items()},
            session_only=self._session_choice and self.session_only.isChecked(),
        )

    def problem(self) -> str:
        value = self.value()
        if not value.name:
            return "Give the connection a name."
        for spec in self.current_system().settings:
            raw = value.settings.get(spec.name)
            if raw is None:
                if spec.required:
                    return f"Enter the {spec.label}."
                continue
            try:
                spec.parse(raw)
            except Exception as exc:  # ConfigurationError: its sentence says what would work
                return str(getattr(exc, "message", exc)).replace(
                    f"The setting {spec.name}", f"{spec.label}")
        if value.region == CUSTOM_REGION and not value.custom_url:
            return "Enter the base URL, or choose a region."
        if self.existing is None:
            missing = [self._label_of(w) for w in self.secret_fields.values()
                       if not w.text().strip()]
            if missing:
                return f"Enter the {' and '.join(missing)}."
        if (self._session_choice and not self.session_only.isChecked()
                and (self.existing is None or value.secrets)):
            return "Tick “keep these keys for this session only”, or set up a keyring first."
        return ""

    # --- test --------------------------------------------------------------------------------

    def test_problem(self) -> str:
        """What must be filled in before a test can run ("" when it can)."""
        value = self.value()
        if value.region == CUSTOM_REGION and not value.custom_url:
            return "Enter the base URL, or choose a region."
        if self.existing is None:
            missing = [self._label_of(w) for w in self.secret_fields.values()
                       if not w.text().strip()]
            if missing:
                return f"Enter the {' and '.join(missing)} to test them."
        return ""

    @Slot()
    def test_entered(self) -> None:
        from optout_desk.ui.tasks import run_task

        problem = self.test_problem()
        if problem:
            self._show_test(problem, ok=False)
            return
        value = self.value()
        custom = value.region == CUSTOM_REGION
        existing = self.existing.name if self.existing else None

        def work(_progress: Any, _cancel: Any) -> Any:
            from optout_desk.workflows.connections import check_unsaved

            return check_unsaved(value.system, region=None if custom else value.region,
                                 base_url=value.custom_url if custom else None,
                                 secrets=value.secrets,
                                 settings={k: v for k, v in value.settings.items()
                                           if v is not None},
                                 existing=existing)

        self.test_button.setEnabled(False)
        self._show_test("Testing…", ok=True)
        self._test_task = run_task(self, work, on_success=self._tested,
                                   on_failure=self._test_failed, name="test unsaved connection")

    def _tested(self, check: Any) -> None:
        self.test_button.setEnabled(True)
        self._test_task = None
        self._show_test(check.message, ok=bool(check.ok))

    def _test_failed(self, exc: BaseException) -> None:
        self.test_button.setEnabled(True)
        self._test_task = None
        message = getattr(exc, "message", None)
        self._show_test(str(message) if message else f"The test failed: {exc}", ok=False)

    def _show_test(self, text: str, ok: bool) -> None:
        self.test_result.setText(text)
        self.test_result.setStyleSheet("" if ok else "color: #c62828;")
        self.test_result.show()

    @Slot()
    def _accept_if_valid(self) -> None:
        problem = self.problem()
        self.error.setText(problem)
        self.error.setVisible(bool(problem))
        if not problem:
            self.accept()

    @classmethod
    def ask(
        cls, parent: QWidget | None, existing: ConnectionInput | None = None,
        keyring_note: str = "", session_only_choice: bool = False,
    ) -> ConnectionInput | None:
        dialog = cls(parent, available_systems(), existing, keyring_note, session_only_choice)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.value()


SESSION_ONLY = "session"
RETRY = "retry"


class KeyringChoice:
    """No keyring backend, or a locked one: the operator chooses; never a plaintext file."""

    @classmethod
    def ask(cls, parent: QWidget | None, message: str, locked: bool) -> str | None:
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("The keys cannot be stored" if not locked else "The keyring is locked")
        box.setText(message)
        box.setInformativeText(
            "Opt-out Desk never writes keys to a plain file. You can use these keys for this "
            "session only (you will enter them again next time), or "
            + ("unlock the keyring and retry." if locked else
               "set up a keyring and retry.")
        )
        session = box.addButton("Use these keys for this session only",
                                QMessageBox.ButtonRole.AcceptRole)
        retry = box.addButton("Unlock and retry" if locked else "Retry",
                              QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.exec()
        clicked = box.clickedButton()
        if clicked is session:
            return SESSION_ONLY
        if clicked is retry:
            return RETRY
        return None
