package probe

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// The vocabulary is closed and documented: every class is snake_case,
// listed once, and named in the README's table, so an operator can look up
// any class a step log shows.
func TestEveryErrorClassIsDocumentedOnce(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[ErrorClass]bool{}
	for _, c := range ErrorClasses {
		if seen[c] {
			t.Errorf("class %s is listed twice", c)
		}
		seen[c] = true
		if c == "" || strings.Trim(string(c), "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			t.Errorf("class %q is not snake_case", c)
		}
		if !strings.Contains(string(readme), "`"+string(c)+"`") {
			t.Errorf("class %s is not in the README", c)
		}
	}
	if !slices.Contains(ErrorClasses, ClassBadAddress) || len(ErrorClasses) < 40 {
		t.Errorf("ErrorClasses holds %d classes", len(ErrorClasses))
	}
}
