package compose_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerfile is the repository's Dockerfile as instructions, continuation
// lines joined, comments and blank lines left out.
func dockerfile(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatalf("read the Dockerfile: %v", err)
	}
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		out = append(out, strings.TrimSpace(cur.String()))
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// shellWords splits a shell command line: whitespace separates words, quotes
// group them, a backslash escapes outside single quotes. Operators such as &&
// come out as words of their own when surrounded by spaces.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	esc := false
	for _, r := range s {
		switch {
		case esc:
			w.WriteRune(r)
			esc = false
		case r == '\\' && quote != '\'':
			esc, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || esc {
		return nil, fmt.Errorf("unterminated quote or escape in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// TestDockerfileBuildsStaticBinary runs the Dockerfile's `go build` line from
// the repository root, as the build stage does (same environment assignments,
// flags and package; output into a temporary directory), and checks that the
// result runs on a distroless/scratch image: a static ELF binary.
func TestDockerfileBuildsStaticBinary(t *testing.T) {
	root := repoRoot(t)
	var build []string
	for _, ins := range dockerfile(t) {
		if strings.HasPrefix(strings.ToUpper(ins), "RUN ") && strings.Contains(ins, "go build") {
			build = append(build, ins)
		}
	}
	if len(build) != 1 {
		t.Fatalf("want exactly one RUN instruction with `go build` in the Dockerfile, found %d: %q", len(build), build)
	}
	words, err := shellWords(build[0])
	if err != nil {
		t.Fatalf("Dockerfile build line: %v", err)
	}
	at := -1
	for i := 0; i+1 < len(words); i++ {
		if words[i] == "go" && words[i+1] == "build" {
			at = i
			break
		}
	}
	if at < 0 {
		t.Fatalf("Dockerfile build line %q has no `go build` command", build[0])
	}
	var env []string
	for i := at - 1; i >= 0 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(words[i]); i-- {
		env = append([]string{words[i]}, env...)
	}
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("the Dockerfile's go build runs without CGO_ENABLED=0 (assignments before it: %q): the binary would not be static", env)
	}
	var args []string
	for _, w := range words[at+2:] {
		if w == "&&" || w == ";" || w == "||" || w == "|" {
			break
		}
		args = append(args, w)
	}
	out := ""
	for i, a := range args {
		if a == "-o" && i+1 < len(args) {
			out = args[i+1]
			args[i+1] = filepath.Join(t.TempDir(), "evflow")
		}
	}
	if out == "" {
		t.Fatalf("the Dockerfile's go build (%q) has no -o", args)
	}
	for _, want := range []string{"-trimpath", "-ldflags=-s -w", "./cmd/evflow"} {
		if !slices.Contains(args, want) {
			t.Errorf("the Dockerfile's go build %q lacks %q", args, want)
		}
	}
	bin := args[slices.Index(args, "-o")+1]

	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH to run the Dockerfile's build: %v", err)
	}
	cmd := exec.CommandContext(t.Context(), goBin, append([]string{"build"}, args...)...)
	cmd.Dir = root
	// The image is linux; the build context has no .git (.dockerignore), so
	// no VCS stamping there either.
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "GOOS=linux", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -buildvcs=false"))
	t.Logf("running %s (env %q) in %s", strings.Join(cmd.Args, " "), env, root)
	if outp, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's go build fails: %v\n%s", err, outp)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("the built binary is not ELF: %v", err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		switch prog.Type {
		case elf.PT_INTERP:
			t.Errorf("the binary has a PT_INTERP program header: it needs a dynamic loader, which distroless/static has not")
		case elf.PT_DYNAMIC:
			t.Errorf("the binary has a PT_DYNAMIC program header: it is dynamically linked")
		}
	}
	if sec := f.Section(".dynamic"); sec != nil {
		t.Errorf("the binary has a .dynamic section: it is dynamically linked")
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary imports shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("the binary has a symbol table: -ldflags=\"-s -w\" did not strip it")
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(root+string(filepath.Separator))) {
		t.Errorf("the binary contains the build directory %s: -trimpath did not take", root)
	}

	// The final stage copies that output to /evflow and runs it as non-root.
	var final []string
	for _, ins := range dockerfile(t) {
		if strings.HasPrefix(strings.ToUpper(ins), "FROM ") {
			final = nil
		}
		final = append(final, ins)
	}
	from := strings.Fields(final[0])
	if len(from) < 2 || !(strings.HasPrefix(from[1], "gcr.io/distroless/static") || from[1] == "scratch") {
		t.Errorf("final stage %q: want gcr.io/distroless/static… or scratch", final[0])
	}
	var copied, user, entry bool
	for _, ins := range final {
		f := strings.Fields(ins)
		switch strings.ToUpper(f[0]) {
		case "COPY":
			copied = copied || (len(f) == 4 && strings.HasPrefix(f[1], "--from=") && f[2] == out && f[3] == "/evflow")
		case "USER":
			u := strings.Split(f[1], ":")[0]
			user = u != "root" && u != "0"
		case "ENTRYPOINT":
			entry = strings.TrimSpace(strings.TrimPrefix(ins, f[0])) == `["/evflow"]`
		}
	}
	if !copied {
		t.Errorf("the final stage does not COPY --from=<build stage> %s /evflow", out)
	}
	if !user {
		t.Errorf("the final stage does not run as a non-root USER")
	}
	if !entry {
		t.Errorf(`the final stage's ENTRYPOINT is not ["/evflow"]`)
	}
}

// TestDockerfileGoVersion: the build stage's Go is go.mod's (the golang images
// set GOTOOLCHAIN=local: an older one cannot build the module).
func TestDockerfileGoVersion(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)\s*$`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("go.mod has no go line")
	}
	goVersion := string(m[1])
	args := map[string]string{}
	var image string
	for _, ins := range dockerfile(t) {
		f := strings.Fields(ins)
		switch strings.ToUpper(f[0]) {
		case "ARG":
			for _, a := range f[1:] {
				if k, v, ok := strings.Cut(a, "="); ok {
					args[k] = v
				}
			}
		case "FROM":
			for _, w := range f[1:] {
				if strings.HasPrefix(w, "golang:") {
					image = os.Expand(w, func(k string) string { return args[k] })
				}
			}
		}
	}
	if image == "" {
		t.Fatalf("the Dockerfile has no golang: build stage")
	}
	tag := strings.TrimPrefix(image, "golang:")
	version, _, _ := strings.Cut(tag, "-") // 1.26.8-bookworm
	if version != goVersion && !strings.HasPrefix(goVersion, version+".") {
		t.Errorf("the build stage is %s, go.mod says go %s", image, goVersion)
	}
}
