package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func checkSecurityHeaders(t *testing.T, path string, w *httptest.ResponseRecorder) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-cache",
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", path, k, got, v)
		}
	}
}

func TestConsoleHandlerServesTheEmbeddedFiles(t *testing.T) {
	h := Handler()
	tests := []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="app.js"`},
		{"/index.html", "text/html; charset=utf-8", `id="token"`},
		{"/app.js", "text/javascript; charset=utf-8", "import { createClient } from './signal-client.js'"},
		{"/signal-client.js", "text/javascript; charset=utf-8", "new this.o.WebSocket("},
		{"/app.css", "text/css; charset=utf-8", "prefers-color-scheme"},
	}
	for _, tt := range tests {
		w := get(t, h, tt.path)
		if w.Code != http.StatusOK {
			t.Errorf("%s: status %d", tt.path, w.Code)
			continue
		}
		if ct := w.Header().Get("Content-Type"); ct != tt.contentType {
			t.Errorf("%s: Content-Type %q, want %q", tt.path, ct, tt.contentType)
		}
		if !strings.Contains(w.Body.String(), tt.contains) {
			t.Errorf("%s: body lacks %q", tt.path, tt.contains)
		}
		checkSecurityHeaders(t, tt.path, w)
	}
}

func TestConsoleHandlerRevalidatesWithETag(t *testing.T) {
	h := Handler()
	etag := get(t, h, "/app.js").Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if w := get(t, h, "/app.js", "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: status %d, want 304", w.Code)
	}
}

func TestConsoleHandlerUnknownPathIs404(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/nope", "/static/app.js", "/app.js/", "/../go.mod", "/index.htm", "/APP.JS"} {
		w := get(t, h, p)
		if w.Code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, w.Code)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" || !strings.Contains(w.Body.String(), `"not_found"`) {
			t.Errorf("%s: %q %s, want the JSON not_found error", p, ct, w.Body)
		}
		checkSecurityHeaders(t, p, w)
	}
}

// The page makes no request to another host and builds no markup from data.
func TestConsoleFilesStayOnTheirHostAndUseNoHTMLSinks(t *testing.T) {
	url := regexp.MustCompile(`(?i)(https?|wss?):/{2}`)
	inline := regexp.MustCompile(`<script>|<style|\sstyle=|\son[a-z]+=`)
	forbidden := []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "localStorage", "eval(", "new Function", "@import"}
	var names []string
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, p)
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		s := string(b)
		if m := url.FindString(s); m != "" {
			t.Errorf("%s contains an absolute URL (%s…): the console must load nothing from another host", p, m)
		}
		for _, f := range forbidden {
			if strings.Contains(s, f) {
				t.Errorf("%s uses %s", p, f)
			}
		}
		if strings.HasSuffix(p, ".html") && inline.MatchString(s) {
			t.Errorf("%s has an inline script, style or event handler (%q): the CSP forbids them", p, inline.FindString(s))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "static/app.css,static/app.js,static/index.html,static/signal-client.js" {
		t.Errorf("embedded files %v, want app.css, app.js, index.html and signal-client.js (the client package)", names)
	}
}
