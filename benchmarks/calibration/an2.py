# Guard calibration: largest error ratios per matrix family, to pick the guard constants.
# Reads the eigenvalue dumps of `Spectrum.Benchmarks calibrate` from <tmp>/spectrum-calibration (run that first).
import numpy as np, glob, os
import tempfile
DATA = os.path.join(tempfile.gettempdir(), 'spectrum-calibration')
u=2.0**-24
res={}
for f in sorted(glob.glob(os.path.join(DATA, '*.f64'))):
    name=os.path.basename(f)[:-4]; kind,shape,seed=name.split('_'); r,c=map(int,shape.split('x'))
    n,k=min(r,c),max(r,c)
    e32,e3264,e64,e6432=np.fromfile(f,dtype='<f8').reshape(4,n)
    lam=np.maximum(e64,0); lmax=lam[-1]; mean=lam.mean()
    dg=np.abs(e3264-e64)/(u*np.sqrt(k))
    a=dg.max()/lmax; b=dg.max()/mean; cc=np.max(dg/(lam+mean)); d=np.max(dg/(lam+lmax*np.sqrt(n)/n)) 
    e=np.max(dg/np.sqrt(lam*lmax+1e-300))
    print(f"{kind:9s} {shape:10s} /lmax={a:.4f} /mean={b:.4f} /(lam_i+mean)={cc:.4f} /sqrt(lam_i*lmax)={e:.4f} lmax/mean={lmax/mean:.1f}")
