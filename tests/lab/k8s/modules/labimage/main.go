// Command labimage assembles the lab's container images from files on this machine and writes
// them, tagged, into one docker-format archive that `ctr images import` loads, as an operator
// preloads images at an air-gapped site. The image format is go-containerregistry's.
//
//	labimage < spec.json
//
// spec.json: {"output": "images.tar", "images": [{"tag": "registry.k8s.io/pause:3.10.2",
// "entrypoint": ["/pause"], "env": ["PATH=/bin"], "files": [{"src": "/abs/path", "dest": "/pause",
// "mode": 493}], "symlinks": [{"dest": "/bin/sh", "target": "busybox"}], "dirs": ["/tmp"]}]}
//
// Each image is one layer; the layer's bytes depend only on the spec and the files' contents
// (fixed times and owners), so the same inputs give the same image IDs.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type file struct {
	Src  string `json:"src"`
	Dest string `json:"dest"`
	Mode int64  `json:"mode"`
}

type symlink struct {
	Dest   string `json:"dest"`
	Target string `json:"target"`
}

type image struct {
	Tag        string    `json:"tag"`
	Entrypoint []string  `json:"entrypoint"`
	Cmd        []string  `json:"cmd"`
	Env        []string  `json:"env"`
	User       string    `json:"user"`
	Files      []file    `json:"files"`
	Symlinks   []symlink `json:"symlinks"`
	Dirs       []string  `json:"dirs"`
}

type spec struct {
	Output string  `json:"output"`
	Images []image `json:"images"`
}

var epoch = time.Unix(0, 0).UTC()

// layer writes one uncompressed tar: every parent directory once, then files and links in
// path order.
func layer(img image) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	type entry struct {
		hdr  *tar.Header
		data []byte
	}
	entries := map[string]entry{}
	addDir := func(p string) {
		for d := path.Clean(p); d != "/" && d != "."; d = path.Dir(d) {
			key := strings.TrimPrefix(d, "/") + "/"
			if _, ok := entries[key]; !ok {
				entries[key] = entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: key, Mode: 0o755, ModTime: epoch}}
			}
		}
	}
	for _, d := range img.Dirs {
		addDir(d)
		key := strings.TrimPrefix(path.Clean(d), "/") + "/"
		if d == "/tmp" || strings.HasSuffix(d, "/tmp") {
			entries[key].hdr.Mode = 0o1777
		}
	}
	for _, f := range img.Files {
		data, err := os.ReadFile(f.Src)
		if err != nil {
			return nil, err
		}
		mode := f.Mode
		if mode == 0 {
			st, err := os.Stat(f.Src)
			if err != nil {
				return nil, err
			}
			mode = int64(st.Mode().Perm())
		}
		addDir(path.Dir(f.Dest))
		key := strings.TrimPrefix(path.Clean(f.Dest), "/")
		entries[key] = entry{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: key, Mode: mode, Size: int64(len(data)), ModTime: epoch}, data: data}
	}
	for _, l := range img.Symlinks {
		addDir(path.Dir(l.Dest))
		key := strings.TrimPrefix(path.Clean(l.Dest), "/")
		entries[key] = entry{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: key, Linkname: l.Target, Mode: 0o777, ModTime: epoch}}
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := entries[k]
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, err
		}
		if e.data != nil {
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func build(img image) (v1.Image, error) {
	data, err := layer(img)
	if err != nil {
		return nil, err
	}
	out, err := mutate.AppendLayers(empty.Image, static.NewLayer(data, types.DockerUncompressedLayer))
	if err != nil {
		return nil, err
	}
	cf, err := out.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := cf.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint = img.Entrypoint
	cfg.Config.Cmd = img.Cmd
	cfg.Config.Env = img.Env
	cfg.Config.User = img.User
	return mutate.ConfigFile(out, cfg)
}

func run() error {
	var s spec
	if err := json.NewDecoder(os.Stdin).Decode(&s); err != nil {
		return fmt.Errorf("reading the spec: %w", err)
	}
	refs := map[name.Reference]v1.Image{}
	for _, img := range s.Images {
		ref, err := name.NewTag(img.Tag)
		if err != nil {
			return fmt.Errorf("%s: %w", img.Tag, err)
		}
		built, err := build(img)
		if err != nil {
			return fmt.Errorf("%s: %w", img.Tag, err)
		}
		refs[ref] = built
	}
	tmp := s.Output + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		return err
	}
	return os.Rename(tmp, s.Output)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "labimage:", err)
		os.Exit(1)
	}
}
