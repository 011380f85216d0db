# Guard calibration: per-matrix ratios of the real float32 Gram eigenvalue error to u32*sqrt(k)*lambda_max.
# Reads the eigenvalue dumps of `Spectrum.Benchmarks calibrate` from <tmp>/spectrum-calibration (run that first).
import numpy as np, glob, os, sys
import tempfile
DATA = os.path.join(tempfile.gettempdir(), 'spectrum-calibration')
u=2.0**-24
rows=[]
for f in sorted(glob.glob(os.path.join(DATA, '*.f64'))):
    name=os.path.basename(f)[:-4]; kind,shape,seed=name.split('_'); r,c=map(int,shape.split('x'))
    n,k=min(r,c),max(r,c)
    a=np.fromfile(f,dtype='<f8').reshape(4,n)
    e32,e3264,e64,e6432=a
    lmax=e64[-1]
    d=np.abs(e32-e64); dg=np.abs(e3264-e64); de=np.abs(e6432-e64)
    # decomposition: err <= u*(A*lam_i + B*lmax)
    B_all = d.max()/(u*lmax)                     # uniform model
    # per-eigenvalue: best B given A
    lam=np.maximum(e64,0)
    def fitB(dd,A): return np.max((dd/u - A*lam)/lmax)
    print(f"{kind:8s} {shape:10s} uniform/n={B_all/n:.3f} uniform/(sqrtk)={B_all/np.sqrt(k):.2f} gramOnly/(sqrtk)={dg.max()/(u*lmax)/np.sqrt(k):.3f} eigOnly/n={de.max()/(u*lmax)/n:.3f} | B(A=sqrtk)/n={fitB(d,np.sqrt(k))/n:.4f} B(A=2sqrtk)/n={fitB(d,2*np.sqrt(k))/n:.4f} B(A=4sqrtk)/n={fitB(d,4*np.sqrt(k))/n:.4f} | rel lam err at top={d[-1]/lmax/u:.1f}u kappa2={lmax/max(lam[0],1e-300):.2e}")
