package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRun(t *testing.T) {
	storage := t.TempDir()
	vol := filepath.Join(storage, "pvc-1_ns_data")
	tests := []struct {
		name, path, action, mode string
		wantErr                  bool
		wantDir                  bool
	}{
		{name: "create makes an open folder", path: vol, action: "create", mode: "Filesystem", wantDir: true},
		{name: "create again is fine", path: vol, action: "create", mode: "Filesystem", wantDir: true},
		{name: "delete removes it", path: vol, action: "delete", mode: "Filesystem"},
		{name: "delete again is fine", path: vol, action: "delete", mode: "Filesystem"},
		{name: "a relative folder is refused", path: "pvc-1", action: "create", mode: "Filesystem", wantErr: true},
		{name: "the root is refused", path: "/", action: "delete", mode: "Filesystem", wantErr: true},
		{name: "a folder right under the root is refused", path: "/var", action: "delete", mode: "Filesystem", wantErr: true},
		{name: "a block volume is refused", path: vol, action: "create", mode: "Block", wantErr: true},
		{name: "an unknown action is refused", path: vol, action: "resize", mode: "Filesystem", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.path, tt.action, tt.mode)
			if (err != nil) != tt.wantErr {
				t.Fatalf("run(%q, %q, %q) = %v, want error %v", tt.path, tt.action, tt.mode, err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			fi, err := os.Stat(vol)
			if tt.wantDir {
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o777 {
					t.Errorf("folder mode %v, want 0777", fi.Mode().Perm())
				}
			} else if !os.IsNotExist(err) {
				t.Errorf("folder still there: %v", err)
			}
		})
	}
	if _, err := os.Stat(storage); err != nil {
		t.Errorf("the storage folder itself went: %v", err)
	}
}
