package layout

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MirrorFromAptSources returns the first Debian "deb" mirror URI named in
// etc/apt/sources.list, etc/apt/sources.list.d/*.list and
// etc/apt/sources.list.d/*.sources (deb822), in apt's reading order. Files
// with other suffixes (such as .disabled-by-farm) are not read, nor are
// deb-src entries, stanzas with "Enabled: no" or security mirrors (URIs
// containing "debian-security"). A Debian mirror is one with "debian" in
// its URI, which keeps third-party repositories (nodesource, cloud SDKs)
// from being handed to debootstrap. etc is normally "/etc".
func MirrorFromAptSources(etc string) (string, error) {
	files := []string{filepath.Join(etc, "apt", "sources.list")}
	var parts []string
	for _, pat := range []string{"*.list", "*.sources"} {
		m, err := filepath.Glob(filepath.Join(etc, "apt", "sources.list.d", pat))
		if err != nil {
			return "", err
		}
		parts = append(parts, m...)
	}
	sort.Strings(parts)
	files = append(files, parts...)

	var read []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		read = append(read, f)
		var uris []string
		if strings.HasSuffix(f, ".sources") {
			uris = deb822URIs(b)
		} else {
			uris = oneLineURIs(b)
		}
		for _, u := range uris {
			if strings.Contains(u, "debian") && !strings.Contains(u, "debian-security") {
				return u, nil
			}
		}
	}
	if len(read) == 0 {
		return "", fmt.Errorf("no Debian mirror: none of %s exists", strings.Join(files, ", "))
	}
	return "", fmt.Errorf("no Debian deb mirror in %s", strings.Join(read, ", "))
}

// oneLineURIs returns the URIs of the "deb" lines of a sources.list:
// deb [option=value ...] uri suite [component ...].
func oneLineURIs(b []byte) []string {
	var uris []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			// Options may hold spaces: skip up to the field closing them.
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) > 0 {
			uris = append(uris, f[0])
		}
	}
	return uris
}

// deb822URIs returns the URIs of the enabled stanzas of type deb in a
// .sources file. Stanzas are separated by blank lines; a line starting with
// white space continues the field above it.
func deb822URIs(b []byte) []string {
	var uris []string
	fields := map[string]string{}
	last := ""
	flush := func() {
		enabled := !strings.EqualFold(strings.TrimSpace(fields["enabled"]), "no")
		if enabled && hasField(fields["types"], "deb") {
			uris = append(uris, strings.Fields(fields["uris"])...)
		}
		fields, last = map[string]string{}, ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += " " + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return uris
}

func hasField(list, want string) bool {
	for _, f := range strings.Fields(list) {
		if f == want {
			return true
		}
	}
	return false
}
