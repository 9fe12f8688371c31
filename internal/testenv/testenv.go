// Package testenv runs a real kube-apiserver and etcd, built from source by
// `make test`, with Marina's CRDs installed, for integration tests.
//
// It never downloads binaries and never skips: a test that needs an API
// server and cannot start one fails with a message saying how to fix that.
package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/enginecrds"
	"github.com/marina-platform/marina/operators/controlplane/component/policysync"
	"github.com/marina-platform/marina/operators/controlplane/component/registration"
)

// AssetsEnv is the environment variable naming the folder that holds the
// kube-apiserver and etcd binaries.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// Env is a running API server with Marina's CRDs.
type Env struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is a controller-runtime client with Marina's and Kubernetes'
	// kinds registered.
	Client client.Client
	// Scheme holds Marina's and Kubernetes' kinds.
	Scheme *runtime.Scheme

	env *envtest.Environment
}

// Options change what StartWith runs.
type Options struct {
	// WithoutMarinaCRDs leaves out charts/marina/crds, for API servers that
	// play a member cluster or a control plane.
	WithoutMarinaCRDs bool
}

// Start starts etcd and kube-apiserver and installs the CRDs of
// charts/marina/crds. Call Stop when done.
func Start() (*Env, error) { return StartWith(Options{}) }

func assetsDir() (string, error) {
	assets := os.Getenv(AssetsEnv)
	if assets == "" {
		return "", fmt.Errorf("%s is not set: run the tests with `make test`, which builds kube-apiserver and etcd from source, or point %s at a folder holding both", AssetsEnv, AssetsEnv)
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return "", fmt.Errorf("%s=%s has no %s (run `make test-binaries`): %w", AssetsEnv, assets, bin, err)
		}
	}
	return assets, nil
}

// StartWith starts etcd and kube-apiserver as o says.
// Call Stop when done.
func StartWith(o Options) (*Env, error) {
	assets, err := assetsDir()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := marinav1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}

	env := &envtest.Environment{BinaryAssetsDirectory: assets, Scheme: scheme}
	// envtest gives each process 20 s, which a loaded machine (a test
	// package starting several API servers next to others) exceeds.
	env.ControlPlane.Etcd = &envtest.Etcd{StartTimeout: 2 * time.Minute}
	env.ControlPlane.GetAPIServer().StartTimeout = 2 * time.Minute
	if !o.WithoutMarinaCRDs {
		env.CRDDirectoryPaths = []string{filepath.Join(root, "charts", "marina", "crds")}
		env.ErrorIfCRDPathMissing = true
	}
	cfg, err := env.Start()
	if err != nil {
		// Start may fail after the processes are up (installing CRDs, for
		// one); stop them rather than leaving them behind.
		_ = env.Stop()
		return nil, fmt.Errorf("start kube-apiserver and etcd from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("create client: %w", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, env: env}, nil
}

// Stop stops kube-apiserver and etcd and removes their data.
func (e *Env) Stop() error {
	return e.env.Stop()
}

// KubeconfigFile writes a kubeconfig for an administrator to dir and returns
// its path, for processes under test.
func (e *Env) KubeconfigFile(dir string) (string, error) {
	user, err := e.env.AddUser(envtest.User{Name: "testenv-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("add admin user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("render kubeconfig: %w", err)
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// RepoRoot is the folder of Marina's go.mod, found by walking up from the
// working directory (go test runs in the package's folder).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "charts", "marina")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no Marina repository root (go.mod next to charts/marina) above the working directory")
		}
		dir = parent
	}
}

// InstallCRDs installs the CRDs in files (such as cert-manager's) next to
// Marina's.
func (e *Env) InstallCRDs(files []string) error {
	crds, err := envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{Paths: files, ErrorIfPathMissing: true})
	if err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	if len(crds) < len(files) {
		return fmt.Errorf("installed %d CRDs from %d files", len(crds), len(files))
	}
	return nil
}

// StartControllerManager runs kube-controller-manager from the assets
// folder against the API server with the given controllers, such as
// garbagecollector, which foreground deletion and owner references need,
// or serviceaccount-token, which fills ServiceAccount token Secrets.
// Its log goes to dir; the returned function stops it.
func (e *Env) StartControllerManager(dir string, controllers ...string) (stop func() error, err error) {
	bin := filepath.Join(os.Getenv(AssetsEnv), "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s has no kube-controller-manager (run `make test-binaries`): %w", AssetsEnv, err)
	}
	kubeconfig, err := e.KubeconfigFile(dir)
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "kube-controller-manager.log"))
	if err != nil {
		return nil, err
	}
	// The serviceaccount-token controller signs with the API server's
	// service-account key and hands out the CA clients trust it with; the
	// other controllers ignore both.
	rootCA := filepath.Join(dir, "root-ca.crt")
	if err := os.WriteFile(rootCA, e.Config.CAData, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"--kubeconfig="+kubeconfig,
		"--controllers="+strings.Join(controllers, ","),
		"--service-account-private-key-file="+filepath.Join(e.env.ControlPlane.APIServer.CertDir, "sa-signer.key"),
		"--root-ca-file="+rootCA,
		"--leader-elect=false",
		// No serving: nothing scrapes it, and a fixed port would collide
		// between test packages running at once.
		"--secure-port=0",
		"--concurrent-gc-syncs=5",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start kube-controller-manager: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return func() error {
		defer func() { _ = logFile.Close() }()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return nil
	}, nil
}

// EngineBundle returns the path of the engine's released CRD bundle of
// version (see package enginecrds). Without it on this machine the test is
// skipped, and fails in CI, where the project's shared folder is always
// beside the clone.
func EngineBundle(t testing.TB, version string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := enginecrds.Find(root, version)
	if errors.Is(err, enginecrds.ErrNotFound) && !enginecrds.Required() {
		t.Skipf("SKIP: the engine's CRD bundle of %s is not on this machine: %v", version, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Path
}

// ControlPlane is a valid ControlPlane with the engine's components off on
// a DataStore that need not exist, for tests of operators that read
// ControlPlanes without provisioning them (the register operator's).
func ControlPlane(namespace, name, dataCenter string) *marinav1alpha1.ControlPlane {
	off := ptr.To(false)
	return &marinav1alpha1.ControlPlane{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: marinav1alpha1.ControlPlaneSpec{
			Version:    "v1.16.0",
			DataCenter: dataCenter,
			Etcd: marinav1alpha1.EtcdSpec{External: &marinav1alpha1.ExternalEtcd{
				DataStore: "shared-etcd",
			}},
			Certificates: marinav1alpha1.CertificatesSpec{CASecretRef: &marinav1alpha1.SecretReference{Name: name + "-ca"}},
			Components: marinav1alpha1.ComponentsSpec{
				AggregatedAPIServer: marinav1alpha1.OptionalComponentSpec{Enabled: off},
				ControllerManager:   marinav1alpha1.OptionalComponentSpec{Enabled: off},
				Scheduler:           marinav1alpha1.SchedulerComponent{OptionalComponentSpec: marinav1alpha1.OptionalComponentSpec{Enabled: off}},
				MetricsAdapter:      marinav1alpha1.OptionalComponentSpec{Enabled: off},
				Search:              marinav1alpha1.OptionalComponentSpec{Enabled: off},
				Webhook:             marinav1alpha1.OptionalComponentSpec{Enabled: off},
			},
		},
	}
}

// RegistrationUser grants the register operator's user what a Marina
// control plane grants it (package registration: the engine's Clusters and
// the Secrets of karmada-cluster) and returns that user's client
// configuration and kubeconfig, so that the register operator's tests reach
// their control planes with the rights it has in production, not as an
// administrator.
func (e *Env) RegistrationUser(ctx context.Context) (*rest.Config, []byte, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: registration.Namespace}}
	if err := e.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, nil, err
	}
	if err := registration.Deploy(ctx, e.Client, "testenv", registration.User, nil); err != nil {
		return nil, nil, err
	}
	return e.user(registration.User)
}

// SyncUser grants the sync operator's user what a Marina control plane
// grants it (package policysync: the engine's policies, namespaces and
// namespaced RBAC) and returns that user's client configuration and
// kubeconfig, so that the sync operator's tests reach their control planes
// with the rights it has in production, not as an administrator.
func (e *Env) SyncUser(ctx context.Context) (*rest.Config, []byte, error) {
	if err := policysync.Deploy(ctx, e.Client, "testenv", policysync.User, nil); err != nil {
		return nil, nil, err
	}
	return e.user(policysync.User)
}

func (e *Env) user(name string) (*rest.Config, []byte, error) {
	user, err := e.env.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("add user %s: %w", name, err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, nil, err
	}
	return user.Config(), kubeconfig, nil
}

// Inline is objs as a PolicySet's inline source takes them: JSON, one
// RawExtension per object.
func Inline(t testing.TB, objs ...map[string]any) []runtime.RawExtension {
	t.Helper()
	out := make([]runtime.RawExtension, 0, len(objs))
	for _, o := range objs {
		data, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, runtime.RawExtension{Raw: data})
	}
	return out
}
