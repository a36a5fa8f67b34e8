// Package autodiscoverexporter holds what belongs to the module as a
// whole rather than to one of its packages: the release version.
package autodiscoverexporter

import (
	_ "embed"
	"runtime/debug"
	"strings"

	"github.com/prometheus/common/version"
)

//go:embed VERSION
var versionFile string

// Version is the release this tree is, from the VERSION file: what a build
// without the release script's -ldflags (go build, go run, go install)
// reports as its version.
func Version() string { return strings.TrimSpace(versionFile) }

// StampVersion fills in the version information of
// github.com/prometheus/common/version that a build without the release
// script's -ldflags lacks: the VERSION of the tree (or of the module, when
// installed with go install), and the commit and its date from Go's build
// information.
func StampVersion() {
	bi, ok := debug.ReadBuildInfo()
	if version.Version == "" {
		version.Version = Version()
		if ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version.Version = strings.TrimPrefix(bi.Main.Version, "v")
		}
	}
	if !ok {
		return
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && (version.Revision == "" || version.Revision == "unknown"):
			version.Revision = s.Value
		case s.Key == "vcs.time" && version.BuildDate == "":
			version.BuildDate = s.Value
		}
	}
}
