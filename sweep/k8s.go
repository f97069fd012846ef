package sweep

import (
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sqnet/sqnet/internal/atomicfile"
)

// K8sOptions configures WriteK8s.
type K8sOptions struct {
	Image string // container image with sqnet and a Vulkan driver
	Bin   string // sqnet's path in the image (default "sqnet", found on PATH)
	// PVC is the PersistentVolumeClaim that holds the sweep folder, mounted at Mount (default /sweep) in every
	// pod: the folder this command wrote into must be that volume's root.
	PVC, Mount string
	// GPUResource is the extended resource a pod requests GPUs under (nvidia.com/gpu, amd.com/gpu,
	// gpu.intel.com/i915); GPUs how many (0: none, a CPU driver such as lavapipe runs the cells).
	GPUResource string
	GPUs        int
	Parallelism int // pods at once (0: all cells)
}

// The manifest's shape: only the fields of batch/v1 Job sqnet writes, with Kubernetes' field names (the test
// decodes it with the Kubernetes API types, unknown fields refused).
type (
	k8sJob struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		Spec       struct {
			CompletionMode       string `yaml:"completionMode"`
			Completions          int    `yaml:"completions"`
			Parallelism          int    `yaml:"parallelism"`
			BackoffLimitPerIndex int    `yaml:"backoffLimitPerIndex"`
			Template             struct {
				Metadata k8sMeta `yaml:"metadata"`
				Spec     struct {
					RestartPolicy string         `yaml:"restartPolicy"`
					Containers    []k8sContainer `yaml:"containers"`
					Volumes       []k8sVolume    `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	k8sMeta struct {
		Name   string            `yaml:"name,omitempty"`
		Labels map[string]string `yaml:"labels"`
	}
	k8sContainer struct {
		Name      string   `yaml:"name"`
		Image     string   `yaml:"image"`
		Command   []string `yaml:"command"`
		Env       []k8sEnv `yaml:"env"`
		Resources struct {
			Limits map[string]string `yaml:"limits,omitempty"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	k8sEnv struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value,omitempty"`
		ValueFrom *struct {
			FieldRef struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom,omitempty"`
	}
	k8sVolume struct {
		Name                  string `yaml:"name"`
		PersistentVolumeClaim struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
	}
)

// K8sManifest is an Indexed Job over the cells of list (a path inside the pods): pod k runs sweep exec --index
// $(JOB_COMPLETION_INDEX), the index Kubernetes gives each pod of an Indexed Job, on the GPU it requested.
func K8sManifest(g *Grid, name, list string, n int, o K8sOptions) ([]byte, error) {
	if o.Image == "" || o.PVC == "" {
		return nil, fmt.Errorf("the k8s backend needs --image and --pvc")
	}
	if o.Bin == "" {
		o.Bin = "sqnet"
	}
	if o.Mount == "" {
		o.Mount = "/sweep"
	}
	if o.GPUs > 0 && o.GPUResource == "" {
		o.GPUResource = "nvidia.com/gpu"
	}
	labels := map[string]string{"app.kubernetes.io/name": "sqnet", "sqnet/sweep": dnsLabel(g.Name)}
	var j k8sJob
	j.APIVersion, j.Kind = "batch/v1", "Job"
	j.Metadata = k8sMeta{Name: name, Labels: labels}
	j.Spec.CompletionMode, j.Spec.Completions = "Indexed", n
	j.Spec.Parallelism = n
	if o.Parallelism > 0 && o.Parallelism < n {
		j.Spec.Parallelism = o.Parallelism
	}
	j.Spec.BackoffLimitPerIndex = 1 // a failed cell gets one more pod; its error stays in its state.json
	j.Spec.Template.Metadata = k8sMeta{Labels: labels}
	ps := &j.Spec.Template.Spec
	ps.RestartPolicy = "Never"
	c := k8sContainer{Name: "cell", Image: o.Image,
		Command: []string{o.Bin, "sweep", "exec", "--dir", o.Mount, "--list", list,
			"--index", "$(JOB_COMPLETION_INDEX)", "--job", "$(POD_NAME)"}}
	env := k8sEnv{Name: "POD_NAME", ValueFrom: &struct {
		FieldRef struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	}{}}
	env.ValueFrom.FieldRef.FieldPath = "metadata.name"
	c.Env = []k8sEnv{env}
	if o.GPUs > 0 {
		c.Resources.Limits = map[string]string{o.GPUResource: strconv.Itoa(o.GPUs)}
		c.Command = append(c.Command, "--device", "gpu:0") // the pod sees only the GPUs it was given
		if o.GPUResource == "nvidia.com/gpu" {
			// The NVIDIA container runtime mounts the Vulkan driver only with the graphics capability (its
			// default is compute,utility: CUDA's).
			c.Env = append(c.Env, k8sEnv{Name: "NVIDIA_DRIVER_CAPABILITIES", Value: "compute,utility,graphics"})
		}
	}
	c.VolumeMounts = append(c.VolumeMounts, struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	}{"results", o.Mount})
	ps.Containers = []k8sContainer{c}
	v := k8sVolume{Name: "results"}
	v.PersistentVolumeClaim.ClaimName = o.PVC
	ps.Volumes = []k8sVolume{v}
	b, err := yaml.Marshal(&j)
	if err != nil {
		return nil, err
	}
	head := fmt.Sprintf("# sqnet sweep %s: %d cells as a Kubernetes Indexed Job (written by sqnet sweep run --backend k8s).\n"+
		"# kubectl apply -f this file; the sweep folder is the root of PersistentVolumeClaim %s, mounted at %s.\n",
		g.Name, n, o.PVC, o.Mount)
	return append([]byte(head), b...), nil
}

// WriteK8s writes the cell list and the Indexed Job manifest into DIR/k8s and returns the manifest's path.
func WriteK8s(dir string, g *Grid, cells []Cell, o K8sOptions) (string, error) {
	if len(cells) == 0 {
		return "", fmt.Errorf("no cells to run")
	}
	st := stamp()
	mount := o.Mount
	if mount == "" {
		mount = "/sweep"
	}
	name := dnsLabel("sqnet-" + g.Name + "-" + strings.NewReplacer("-", "", ".", "").Replace(st))
	b, err := K8sManifest(g, name, path.Join(mount, "k8s", st+".cells"), len(cells), o)
	if err != nil {
		return "", err
	}
	if err := writeList(filepath.Join(dir, "k8s", st+".cells"), cells); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "k8s", "job-"+st+".yaml")
	return out, atomicfile.Write(out, b, 0o644)
}

// dnsLabel makes s a DNS-1123 label (what Kubernetes names and label values must be): lower case, [a-z0-9-],
// at most 63 characters, alphanumeric at both ends.
func dnsLabel(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := b.String()
	if len(out) > 63 {
		out = out[len(out)-63:]
	}
	return strings.Trim(out, "-")
}
