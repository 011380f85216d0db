# Guard calibration: compares the guard's score-error bound (interval and shift variants) with the real float32 score error.
# Reads the eigenvalue dumps of `Spectrum.Benchmarks calibrate` from <tmp>/spectrum-calibration (run that first).
import numpy as np, glob, os, sys
import tempfile
DATA = os.path.join(tempfile.gettempdir(), 'spectrum-calibration')
u=2.0**-24; u64=2.0**-53
def quant_desc(s,q):
    a=np.sort(s); n=len(a); pos=q*(n-1); b=int(np.floor(pos)); ab=min(b+1,n-1); w=pos-b
    return a[b]+w*(a[ab]-a[b]) if w<0.5 else a[ab]-(a[ab]-a[b])*(1-w)
def score(s,r,c):
    s=np.sort(s)[::-1]; beta=min(r,c)/max(r,c)
    sig=(quant_desc(s,.75)-quant_desc(s,.25))/1.349; t=sig*(1+np.sqrt(beta))
    sg=s[s>t].sum(); m=s<=t; nz=s[m].sum() if m.any() else 1.0
    return sg/nz/s[0]
def box(lam,dl,r,c):
    s=np.sqrt(np.maximum(lam,0)); lo=np.sqrt(np.maximum(lam-dl,0)); hi=np.sqrt(np.maximum(lam+dl,0))
    s,lo,hi=[np.sort(x)[::-1] for x in (s,lo,hi)]
    sc=score(s,r,c); w=1+np.sqrt(min(r,c)/max(r,c))
    tl=max(0,quant_desc(lo,.75)-quant_desc(hi,.25))/1.349*w; th=(quant_desc(hi,.75)-quant_desc(lo,.25))/1.349*w
    sure_s=lo>th; sure_n=hi<=tl; maybe=~sure_s&~sure_n
    smin=lo[sure_s].sum(); smax=hi[sure_s|maybe].sum()
    if sure_n.any(): nmin=lo[sure_n].sum(); nmax=hi[sure_n|maybe].sum()
    elif not maybe.any(): nmin=nmax=1
    else: nmin=min(1,lo[maybe].min()); nmax=max(1,hi[maybe].sum())
    lo_sc=smin/nmax/hi[0]; hi_sc=np.inf if nmin==0 or lo[0]==0 else smax/nmin/lo[0]
    return max(hi_sc-sc, sc-lo_sc)/abs(sc), maybe.sum()
def shift(lam,dl,r,c):
    s=np.sqrt(np.maximum(lam,0)); sc=score(s,r,c)
    a=score(np.sqrt(np.maximum(lam+dl,0)),r,c); b=score(np.sqrt(np.maximum(lam-dl,0)),r,c)
    return max(abs(a-sc),abs(b-sc))/abs(sc)
print(f"{'kind':9s} {'shape':10s} actual   | boxA(.5lmax) boxB(4(l+m)) boxMin  | shiftA shiftMin | maybeA maybeMin")
for f in sorted(glob.glob(os.path.join(DATA, '*_1234.f64'))):
    name=os.path.basename(f)[:-4]; kind,shape,seed=name.split('_'); r,c=map(int,shape.split('x'))
    n,k=min(r,c),max(r,c)
    e32,e3264,e64,e6432=np.fromfile(f,dtype='<f8').reshape(4,n)
    lam=e3264; lmax=max(lam[-1],0); mean=np.maximum(lam,0).mean()
    s64=score(np.sqrt(np.maximum(e64,0)),r,c); s32=score(np.sqrt(np.maximum(e3264,0)),r,c)
    act=abs(s32-s64)/abs(s64)
    eig=1.0*u64*n*lmax
    dA=0.5*u*np.sqrt(k)*lmax+eig; dB=4*u*np.sqrt(k)*(np.maximum(lam,0)+mean)+eig; dM=np.minimum(dA,dB)
    bA,mA=box(lam,dA,r,c); bB,_=box(lam,dB,r,c); bM,mM=box(lam,dM,r,c)
    print(f"{kind:9s} {shape:10s} {act:.1e} | {bA:.1e} {bB:.1e} {bM:.1e} | {shift(lam,dA,r,c):.1e} {shift(lam,dM,r,c):.1e} | {mA} {mM} {'VIOLATION' if act>bM else ''}")
print("---- measured-norm model: dl = frob_diag + 4*frob_off/sqrt(n)")
fr={}
for line in open(os.path.join(DATA, 'frob.txt')):
    p=line.split(); d=dict(x.split('=') for x in p[2:]); fr[(p[0],p[1])]=d
for f in sorted(glob.glob(os.path.join(DATA, '*_1234.f64'))):
    name=os.path.basename(f)[:-4]; kind,shape,seed=name.split('_'); r,c=map(int,shape.split('x'))
    if (kind,shape) not in fr: continue
    n,k=min(r,c),max(r,c)
    e32,e3264,e64,e6432=np.fromfile(f,dtype='<f8').reshape(4,n)
    lam=e3264; lmax=max(lam[-1],0)
    s64=score(np.sqrt(np.maximum(e64,0)),r,c); s32=score(np.sqrt(np.maximum(e3264,0)),r,c)
    act=abs(s32-s64)/abs(s64)
    d=fr[(kind,shape)]; frob=float(d['frob']); ds=float(d['diagShare']); dmax=float(d['dmax'])
    dl=frob*ds+4*frob*np.sqrt(1-ds*ds)/np.sqrt(n)+1.0*u64*n*lmax
    b,m=box(lam,dl,r,c)
    print(f"{kind:9s} {shape:10s} {act:.1e} | box {b:.1e} maybe {m} | dl/dmax={dl/dmax:.1f} {'VIOLATION' if act>b or dl<dmax else ''}")
