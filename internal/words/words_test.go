package words

import (
	"reflect"
	"testing"
)

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		s     string
		width int
		want  []string
	}{
		{"", 10, nil},
		{"  one  ", 10, []string{"one"}},
		{"the cat sat on the mat", 10, []string{"the cat", "sat on the", "mat"}},
		{"a supercalifragilistic word", 5, []string{"a", "supercalifragilistic", "word"}},
		{"exactly ten", 11, []string{"exactly ten"}},
	} {
		if got := Wrap(tc.s, tc.width); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Wrap(%q, %d) = %q, want %q", tc.s, tc.width, got, tc.want)
		}
	}
}
