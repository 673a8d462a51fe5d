; Inno Setup 6 script: a per-user installer for the PyInstaller build in dist\optout-desk.
;   iscc /DAppVersion=0.1.0 packaging\windows\optout-desk.iss   (packaging/build.sh does this)
; -> dist\optout-desk-<version>-setup.exe
;
; Per user, no admin rights: installs to %LOCALAPPDATA%\Programs\Opt-out Desk with a Start-menu
; entry. The uninstaller removes the program and then OFFERS to remove the user's data too
; (database, logs, settings, exports in %LOCALAPPDATA%\optout-desk, platformdirs'
; user_data_dir("optout-desk", appauthor=False)); API keys stay in Windows Credential Manager
; unless the user removed their connections in the app first.

#ifndef AppVersion
  #error Pass the version from pyproject.toml: iscc /DAppVersion=X.Y.Z optout-desk.iss
#endif

#define AppName "Opt-out Desk"
#define AppExe "optout-desk.exe"
#define Root "..\.."

[Setup]
; A fixed AppId keeps upgrades in place; never change it.
AppId={{6F0B8C1E-4D7A-4E55-9C2B-0D1E5A7C3F21}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Opt-out Desk
VersionInfoVersion={#AppVersion}
PrivilegesRequired=lowest
DefaultDirName={localappdata}\Programs\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
DisableDirPage=auto
UninstallDisplayName={#AppName}
UninstallDisplayIcon={app}\{#AppExe}
SetupIconFile={#Root}\resources\icons\optout-desk.ico
OutputDir={#Root}\dist
OutputBaseFilename=optout-desk-{#AppVersion}-setup
Compression=lzma2/fast
SolidCompression=yes
WizardStyle=modern
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; Close a running copy before replacing its files.
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#Root}\dist\optout-desk\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; Comment: "Keep opt-outs in sync across platforms and your CRM"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Files the app may have written next to itself (none today; PyInstaller caches nothing).
Type: dirifempty; Name: "{app}"

[Code]
function UserDataDir(): String;
begin
  Result := ExpandConstant('{localappdata}\optout-desk');
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  { After the program files are gone, offer (never force) removing the user's data.
    Silent uninstalls keep the data: nobody was asked. }
  if (CurUninstallStep = usPostUninstall) and DirExists(UserDataDir()) and not UninstallSilent() then
  begin
    if MsgBox('Also remove your Opt-out Desk data?' + #13#10#13#10 +
              'This deletes the local database (cached opt-out lists, submission journal, ' +
              'run history), logs, settings and exports in:' + #13#10 + UserDataDir() + #13#10#13#10 +
              'Choose No to keep them for a later reinstall.',
              mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
    begin
      if not DelTree(UserDataDir(), True, True, True) then
        MsgBox('Some files in ' + UserDataDir() + ' could not be removed; delete the folder by hand.',
               mbError, MB_OK);
    end;
  end;
end;
